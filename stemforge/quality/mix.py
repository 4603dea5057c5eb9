"""A mix of a request's stems, at a documented gain staging (docs/quality.md):

1. each stem at its engine-provided gain (``RenderedStem.mix_gain_db``, applied to the stem as
   stored), or, where the engine gives none, at the gain that brings it to ``stem_lufs``
   (loudness-matched; a silent stem stays at 0 dB);
2. summed, as long as the longest stem (shorter ones padded with silence);
3. the whole mix turned down, never up, until its true peak is under ``true_peak_dbtp``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stemforge.dsp.loudness import integrated_lufs, true_peak_dbfs
from stemforge.quality.bounds import MixStaging

# Aim this far under the ceiling: the WAV's 16-bit rounding and other meters must not reach it.
_CEILING_MARGIN_DB = 0.1


@dataclass(frozen=True)
class MixInput:
    stem_type: str
    audio: np.ndarray  # (frames, channels) float
    gain_db: float | None  # engine-provided; None: loudness-matched


@dataclass(frozen=True)
class Mix:
    audio: np.ndarray  # (frames, channels) float32
    stem_gains_db: dict[str, float]
    gain_sources: dict[str, str]  # "engine" or "loudness-matched"
    master_gain_db: float  # <= 0: what the true-peak ceiling took off the sum


def stem_gain_db(audio: np.ndarray, sample_rate: int, provided: float | None, stem_lufs: float) -> float:
    if provided is not None:
        return float(provided)
    loudness = integrated_lufs(audio, sample_rate)
    return float(stem_lufs - loudness) if np.isfinite(loudness) else 0.0


def mix_stems(stems: Sequence[MixInput], sample_rate: int, staging: MixStaging) -> Mix:
    frames = max(stem.audio.shape[0] for stem in stems)
    channels = max(stem.audio.shape[1] if stem.audio.ndim == 2 else 1 for stem in stems)
    total = np.zeros((frames, channels), dtype=np.float64)
    gains: dict[str, float] = {}
    sources: dict[str, str] = {}
    for stem in stems:
        audio = stem.audio if stem.audio.ndim == 2 else stem.audio[:, None]
        gain = stem_gain_db(audio, sample_rate, stem.gain_db, staging.stem_lufs)
        gains[stem.stem_type] = gain
        sources[stem.stem_type] = "engine" if stem.gain_db is not None else "loudness-matched"
        # A mono stem goes to every channel.
        total[: audio.shape[0]] += audio.astype(np.float64) * 10 ** (gain / 20)
    peak = true_peak_dbfs(total)
    target = staging.true_peak_dbtp - _CEILING_MARGIN_DB
    master = min(0.0, target - peak) if np.isfinite(peak) else 0.0
    audio = (total * 10 ** (master / 20)).astype(np.float32)
    return Mix(audio=audio, stem_gains_db=gains, gain_sources=sources, master_gain_db=master)
