"""Lining a generated stem up with the request's tempo grid. Pure numpy and librosa, no torch.

Model engines follow "bpm: 120" only loosely and start their beats wherever they like. The
measured tempo and grid offset are reported for every stem; with ``time_stretch_to_bpm`` a stem
whose tempo is close to the target (after folding half/double time, which beat trackers confuse)
is time-stretched onto it and then shifted so its beats fall on the request's beats: stems of
one request from different engines then line up sample for sample.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_STRETCH = 0.15  # beyond this a phase vocoder audibly smears; the stem is left as generated
_ALREADY_THERE = 0.005
# Below this grid strength (see ``GridOffset``) there are no beats to speak of (a pad, noise):
# shifting would move the audio by a guess.
MIN_GRID_STRENGTH = 0.6


def fold_tempo(measured: float, target: float) -> float:
    """The half/double-time reading of ``measured`` nearest to ``target``."""
    if measured <= 0 or target <= 0:
        return measured
    folded = measured
    while folded < target / np.sqrt(2):
        folded *= 2
    while folded > target * np.sqrt(2):
        folded /= 2
    return folded


def stretch_rate(measured: float, target: float, max_stretch: float = MAX_STRETCH) -> float | None:
    """Playback rate that moves ``measured`` onto ``target`` (>1 speeds up), or None when the stem
    is already there or too far off to stretch cleanly."""
    if not (np.isfinite(measured) and measured > 0 and target > 0):
        return None
    rate = target / fold_tempo(measured, target)
    if abs(rate - 1) < _ALREADY_THERE or abs(rate - 1) > max_stretch:
        return None
    return float(rate)


def time_stretch(audio: np.ndarray, rate: float) -> np.ndarray:
    """``audio``: ``(frames, channels)``; returns about ``frames / rate`` frames."""
    import librosa

    channels = [
        librosa.effects.time_stretch(np.ascontiguousarray(audio[:, c]), rate=rate)
        for c in range(audio.shape[1])
    ]
    return np.stack(channels, axis=1).astype(np.float32)


def fit_length(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """Cut or zero-pad ``(frames, channels)`` audio to ``num_frames``."""
    if audio.shape[0] >= num_frames:
        return np.ascontiguousarray(audio[:num_frames], dtype=np.float32)
    padding = np.zeros((num_frames - audio.shape[0], audio.shape[1]), dtype=np.float32)
    return np.concatenate([audio.astype(np.float32), padding])


def shift(audio: np.ndarray, frames: int) -> np.ndarray:
    """Move audio later by ``frames`` (earlier when negative), keeping its length: what moves out
    is dropped, what comes in is silence."""
    if frames == 0:
        return audio
    out = np.zeros_like(audio)
    if frames > 0:
        out[frames:] = audio[: audio.shape[0] - frames]
    else:
        out[: audio.shape[0] + frames] = audio[-frames:]
    return out


@dataclass(frozen=True)
class Alignment:
    """What was measured of a stem and done to it; ``info()`` goes into its callback entry."""

    measured_bpm: float
    stretch_rate: float | None = None
    shift_seconds: float = 0.0
    grid_strength: float | None = None

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"measured_bpm": round(self.measured_bpm, 2)}
        if self.grid_strength is not None:
            facts["time_stretch_rate"] = round(self.stretch_rate, 4) if self.stretch_rate else None
            facts["grid_shift_ms"] = round(self.shift_seconds * 1000, 1)
        return facts


def align_to_grid(
    audio: np.ndarray, sample_rate: int, bpm: float, num_frames: int, *, stretch: bool, beats_per_bar: int = 4
) -> tuple[np.ndarray, Alignment]:
    """``audio`` (``(frames, channels)``, longer than ``num_frames`` by ``alignment_margin`` when
    stretching) measured against ``bpm`` and, with ``stretch``, stretched onto it and shifted
    onto its beat grid. Returns exactly ``num_frames`` frames."""
    from stemforge.dsp.tempo import estimate_bpm, grid_offset

    measured = estimate_bpm(audio[:num_frames], sample_rate, start_bpm=bpm)
    if not stretch:
        return fit_length(audio, num_frames), Alignment(measured_bpm=measured)
    rate = stretch_rate(measured, bpm)
    if rate is not None:
        audio = time_stretch(audio, rate)
    offset = grid_offset(audio[:num_frames], sample_rate, bpm, beats_per_bar)
    moved = 0.0
    if offset.strength >= MIN_GRID_STRENGTH:
        # Always earlier, to the stem's first beat at or after the grid's start: the stem then
        # starts on a beat rather than with silence, and the margin fills its end.
        moved = -(offset.beat_seconds % (60.0 / bpm))
        audio = shift(audio, round(moved * sample_rate))
    return fit_length(audio, num_frames), Alignment(measured, rate, moved, offset.strength)


def alignment_margin(bpm: float) -> tuple[float, float]:
    """``(factor, seconds)``: generate ``duration * factor + seconds`` for ``align_to_grid`` to
    stretch (up to ``MAX_STRETCH`` faster) and shift (up to a beat earlier) without running out."""
    return 1.0 + MAX_STRETCH, 60.0 / bpm
