"""The bounds a stem is held to, and how the mix is staged: one frozen value built from the
settings (``QUALITY_*``, ``MIX_*``), so the pure code never reads the environment."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QualityBounds:
    tempo_tolerance_percent: float = 2.0  # measured tempo vs asked (or a metrical relative of it)
    # Below this tempo confidence a stem's tempo and grid are not judged, and drums or bass this
    # unsteady are warned about ("no steady beat").
    min_tempo_confidence: float = 0.15
    max_grid_offset_ms: float = 75.0  # a stem's onsets vs the request's eighth-note grid, and the spread
    min_grid_coherence: float = 0.3  # below this the onsets share no phase: no grid offset is judged
    min_chord_adherence: float = 0.25  # share of sounding bars that follow the asked chord
    min_loudness_lufs: float = -30.0
    max_loudness_lufs: float = -8.0
    max_true_peak_dbtp: float = -0.9  # engines master to -1 dBTP; 0.1 dB for meters that differ
    max_clipped_samples: int = 0
    max_silence_share: float = 0.5
    max_dc_offset: float = 0.01  # full-scale units (-40 dBFS)
    max_sub_20hz_share: float = 0.05
    min_clap_similarity: float | None = None  # None: text-audio similarity is reported, not judged


@dataclass(frozen=True)
class MixStaging:
    stem_lufs: float = -20.0  # where a stem without an engine-provided gain is loudness-matched
    true_peak_dbtp: float = -1.0  # the whole mix is turned down until its true peak is under this


@dataclass(frozen=True)
class QualityConfig:
    enabled: bool = True
    bounds: QualityBounds = QualityBounds()
    mix: MixStaging = MixStaging()

    @classmethod
    def from_settings(cls, settings: Any) -> "QualityConfig":
        return cls(
            enabled=settings.quality_analysis,
            bounds=QualityBounds(
                tempo_tolerance_percent=settings.quality_tempo_tolerance_percent,
                min_tempo_confidence=settings.quality_min_tempo_confidence,
                max_grid_offset_ms=settings.quality_max_grid_offset_ms,
                min_grid_coherence=settings.quality_min_grid_coherence,
                min_chord_adherence=settings.quality_min_chord_adherence,
                min_loudness_lufs=settings.quality_min_loudness_lufs,
                max_loudness_lufs=settings.quality_max_loudness_lufs,
                max_true_peak_dbtp=settings.quality_max_true_peak_dbtp,
                max_clipped_samples=settings.quality_max_clipped_samples,
                max_silence_share=settings.quality_max_silence_share,
                max_dc_offset=settings.quality_max_dc_offset,
                max_sub_20hz_share=settings.quality_max_sub_20hz_share,
                min_clap_similarity=settings.quality_min_clap_similarity,
            ),
            mix=MixStaging(stem_lufs=settings.mix_stem_lufs, true_peak_dbtp=settings.mix_true_peak_dbtp),
        )
