"""One stem's quality and the request's: the metrics put together as the callback shows them.

``analyse_stem`` and ``analyse_request`` are pure (arrays in, JSON-ready dicts out) and blocking:
the uploader runs them in worker threads. Metrics that need librosa are left out (``None``) with
``missing`` saying why, so the rest still reaches the client.
"""

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stemforge.quality.harmony import (
    CHORDAL_STEMS,
    ROOT_STEMS,
    chord_adherence,
    chords_per_bar,
    estimate_key,
    stem_bar_chroma,
)
from stemforge.quality.rhythm import ANALYSIS_RATE, rhythm_metrics, to_analysis_mono
from stemforge.quality.signal import signal_metrics

logger = logging.getLogger(__name__)

NO_LIBROSA = 'tempo, grid, onsets, key and chords need librosa: pip install "stemforge[analysis]"'
PITCHED_STEMS = CHORDAL_STEMS | ROOT_STEMS | {"vocals"}


@dataclass(frozen=True)
class RequestContext:
    """What the stems were asked to be, as applied (the callback's ``parameters``)."""

    bpm: float
    sample_rate: int
    beats_per_bar: int = 4
    chord_progression: tuple[str, ...] | None = None
    key: str | None = None
    # Where bar 1 falls (stems that accompany a reference start on its first downbeat).
    bar_one_seconds: float = 0.0

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any], bpm: float, sample_rate: int) -> "RequestContext":
        chords = parameters.get("chord_progression")
        return cls(
            bpm=float(parameters.get("target_bpm") or bpm),
            sample_rate=sample_rate,
            beats_per_bar=_beats_per_bar(parameters.get("time_signature")),
            chord_progression=tuple(str(c) for c in chords) if chords else None,
            key=str(parameters["key"]) if parameters.get("key") else None,
            bar_one_seconds=float(
                (parameters.get("reference_analysis") or {}).get("stems_start_seconds") or 0.0
            ),
        )

    @property
    def bar_seconds(self) -> float:
        return self.beats_per_bar * 60.0 / self.bpm


def _beats_per_bar(signature: Any) -> int:
    """Beats of the request's tempo per bar. In compound metres (6/8, 12/8) the tempo counts
    dotted quarters, as the procedural engine plays them: 2 and 4 beats per bar."""
    try:
        top, _, bottom = str(signature).partition("/")
        beats, unit = int(top), int(bottom or 4)
    except ValueError:
        return 4
    if unit == 8 and beats % 3 == 0 and beats > 3:
        beats //= 3
    return beats if 1 <= beats <= 16 else 4


@dataclass
class StemQuality:
    stem_type: str
    metrics: dict[str, Any] = field(default_factory=dict)  # the callback's per-stem "quality"
    bar_chroma: np.ndarray | None = None  # kept for the request's key; not in the callback
    missing: list[str] = field(default_factory=list)  # why metrics are absent


def _rounded(value: Any, digits: int) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return round(float(value), digits) if np.isfinite(value) else None
    return value


def analyse_stem(stem_type: str, audio: np.ndarray, context: RequestContext) -> StemQuality:
    started = time.perf_counter()
    quality = StemQuality(stem_type)
    signal = signal_metrics(audio, context.sample_rate)
    metrics: dict[str, Any] = {
        "length_seconds": round(audio.shape[0] / context.sample_rate, 6),
        "loudness_lufs": _rounded(signal.loudness_lufs, 2),
        "true_peak_dbtp": _rounded(signal.true_peak_dbtp, 2),
        "clipped_samples": signal.clipped_samples,
        "silence_share": _rounded(signal.silence_share, 3),
        "dc_offset": _rounded(signal.dc_offset, 5),
        "sub_20hz_share": _rounded(signal.sub_20hz_share, 4),
        "spectral_centroid_hz": _rounded(signal.spectral_centroid_hz, 1),
    }
    try:
        metrics |= _musical_metrics(quality, audio, context)
    except ModuleNotFoundError as exc:
        if exc.name not in ("librosa", "soxr"):
            raise
        quality.missing.append(NO_LIBROSA)
    metrics["analysis_seconds"] = round(time.perf_counter() - started, 3)
    quality.metrics = metrics
    return quality


def _musical_metrics(quality: StemQuality, audio: np.ndarray, context: RequestContext) -> dict[str, Any]:
    mono = to_analysis_mono(audio, context.sample_rate)
    rhythm = rhythm_metrics(mono, context.bpm, context.beats_per_bar)
    metrics: dict[str, Any] = {
        "tempo_bpm": _rounded(rhythm.tempo_bpm, 2),
        "tempo_confidence": _rounded(rhythm.tempo_confidence, 3),
        "tempo_relation": rhythm.tempo_relation,
        "tempo_error_percent": _rounded(rhythm.tempo_error_percent, 2),
        "grid_offset_ms": _rounded(rhythm.grid_offset_ms, 1),
        "grid_coherence": _rounded(rhythm.grid_coherence, 3),
        "first_downbeat_offset_ms": _rounded(rhythm.first_downbeat_offset_ms, 1),
        "onset_density_per_second": _rounded(rhythm.onset_density_per_second, 2),
    }
    if quality.stem_type not in PITCHED_STEMS:
        return metrics
    bars = mono[round(context.bar_one_seconds * ANALYSIS_RATE) :]
    chroma = stem_bar_chroma(bars, ANALYSIS_RATE, context.bar_seconds)
    quality.bar_chroma = chroma
    key = estimate_key(chroma)
    metrics["key"] = key.key.name if key else None
    metrics["key_confidence"] = _rounded(key.confidence, 3) if key else None
    chords = chords_per_bar(context.chord_progression, len(chroma)) if context.chord_progression else None
    if chords and quality.stem_type in CHORDAL_STEMS | ROOT_STEMS:
        adherence = chord_adherence(chroma, chords, by_root=quality.stem_type in ROOT_STEMS)
        metrics["chord_adherence"] = _rounded(adherence.adherence, 3)
        metrics["chord_bar_scores"] = [_rounded(s, 2) for s in adherence.bar_scores]
    return metrics


def request_key(stems: Sequence[StemQuality]) -> dict[str, Any]:
    """The key of the pitched stems together (each bar's chroma normalized, so no stem dominates
    by level)."""
    rows = [
        s.bar_chroma / np.maximum(np.linalg.norm(s.bar_chroma, axis=1, keepdims=True), 1e-12)
        for s in stems
        if s.bar_chroma is not None
    ]
    key = estimate_key(np.concatenate(rows)) if rows else None
    return {
        "key": key.key.name if key else None,
        "key_confidence": _rounded(key.confidence, 3) if key else None,
    }
