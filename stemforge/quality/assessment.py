"""A request's whole assessment: every stem's quality, the request's coherence (same length,
same grid, its tempo and key), the mix and its quality, and the warnings.

``summarize`` is pure; ``assess`` runs the steps one after another (the benchmark, tests). The
uploader runs the same steps side by side in worker threads (``stemforge.jobs.publisher``).
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stemforge.quality.bounds import QualityBounds, QualityConfig
from stemforge.quality.mix import Mix, MixInput, mix_stems
from stemforge.quality.report import RequestContext, StemQuality, analyse_stem, request_key
from stemforge.quality.warnings import request_warnings, stem_warnings

MIX_NAME = "mix"
DEFAULT_CONFIG = QualityConfig()


@dataclass(frozen=True)
class Assessment:
    stems: dict[str, dict[str, Any]]  # stem -> its "quality" in the callback
    request: dict[str, Any]  # the callback's top-level "quality"
    warnings: list[str]
    mix: Mix


def grid_spread(stems: Sequence[StemQuality], bounds: QualityBounds) -> tuple[float | None, list[str]]:
    """(largest minus smallest grid offset, the stems judged): only stems with a steady beat and
    a common onset phase have a grid to compare."""
    judged = [
        s
        for s in stems
        if s.metrics.get("grid_offset_ms") is not None
        and (s.metrics.get("tempo_confidence") or 0.0) >= bounds.min_tempo_confidence
        and (s.metrics.get("grid_coherence") or 0.0) >= bounds.min_grid_coherence
    ]
    if len(judged) < 2:
        return None, [s.stem_type for s in judged]
    offsets = [float(s.metrics["grid_offset_ms"]) for s in judged]
    return round(max(offsets) - min(offsets), 1), [s.stem_type for s in judged]


def summarize(
    stems: Sequence[StemQuality],
    mix: Mix,
    mix_quality: StemQuality,
    context: RequestContext,
    bounds: QualityBounds,
    analysis_seconds: float,
) -> Assessment:
    lengths = {s.stem_type: s.metrics["length_seconds"] for s in stems}
    same_length = len(set(lengths.values())) <= 1
    spread, judged = grid_spread(stems, bounds)
    mq = mix_quality.metrics
    request: dict[str, Any] = {
        "same_length": same_length,
        "length_seconds": next(iter(lengths.values())) if same_length else lengths,
        "same_grid": None if spread is None else spread <= bounds.max_grid_offset_ms,
        "grid_spread_ms": spread,
        "grid_stems": judged,
        "tempo_bpm": mq.get("tempo_bpm"),
        "tempo_confidence": mq.get("tempo_confidence"),
        "tempo_error_percent": mq.get("tempo_error_percent") if mq.get("tempo_relation") == "1" else None,
        **request_key(stems),
        "key_asked": context.key,
        "mix": {
            "length_seconds": mq["length_seconds"],
            "loudness_lufs": mq.get("loudness_lufs"),
            "true_peak_dbtp": mq.get("true_peak_dbtp"),
            "stem_gains_db": {s: round(g, 2) for s, g in mix.stem_gains_db.items()},
            "gain_sources": mix.gain_sources,
            "master_gain_db": round(mix.master_gain_db, 2),
        },
        "analysis_seconds": round(analysis_seconds, 3),
    }
    missing = sorted({reason for s in [*stems, mix_quality] for reason in s.missing})
    if missing:
        request["missing"] = missing
    warnings = [w for s in stems for w in stem_warnings(s.stem_type, s.metrics, context.bpm, bounds)]
    warnings += request_warnings(request, bounds)
    warnings += [f"quality: {reason}" for reason in missing]
    return Assessment({s.stem_type: s.metrics for s in stems}, request, warnings, mix)


def assess(
    stems: Sequence[MixInput],
    context: RequestContext,
    config: QualityConfig = DEFAULT_CONFIG,
    extra: Callable[[StemQuality, MixInput], None] | None = None,
) -> Assessment:
    """The whole assessment, step by step, in the calling thread. ``extra`` adds metrics to a
    stem's quality (text-audio similarity)."""
    started = time.perf_counter()
    qualities = []
    for stem in stems:
        quality = analyse_stem(stem.stem_type, stem.audio, context)
        if extra is not None:
            extra(quality, stem)
        qualities.append(quality)
    mix = mix_stems(stems, context.sample_rate, config.mix)
    mix_quality = analyse_stem(MIX_NAME, mix.audio, context)
    return summarize(qualities, mix, mix_quality, context, config.bounds, time.perf_counter() - started)


def warm_up(sample_rate: int) -> None:
    """Import librosa and compile its numba kernels now (about a second), not in the first job's
    callback: a short click track through every step."""
    import numpy as np

    audio = np.zeros((2 * sample_rate, 2), dtype=np.float32)
    audio[:: sample_rate // 2] = 0.5
    assess(
        [MixInput("bass", audio, None)],
        RequestContext(bpm=120.0, sample_rate=sample_rate, chord_progression=("C",)),
    )
