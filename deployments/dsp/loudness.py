"""Loudness normalization to a LUFS target with a true-peak ceiling (ITU-R BS.1770 via pyloudnorm)."""

import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

DEFAULT_TARGET_LUFS = -14.0
DEFAULT_PEAK_CEILING_DBFS = -1.0
_SILENCE_LUFS = -70.0


def true_peak_dbfs(audio: np.ndarray) -> float:
    """Peak of the 4x oversampled signal (BS.1770 annex 2), in dBFS."""
    if audio.size == 0:
        return -np.inf
    oversampled = resample_poly(audio, 4, 1, axis=0)
    peak = float(np.max(np.abs(oversampled)))
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    # BS.1770 needs at least one 400 ms gating block.
    if audio.shape[0] < int(0.4 * sample_rate):
        return -np.inf
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio.astype(np.float64)))


def normalize_loudness(
    audio: np.ndarray,
    sample_rate: int,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    peak_ceiling_dbfs: float = DEFAULT_PEAK_CEILING_DBFS,
) -> np.ndarray:
    """Remove DC, gain to ``target_lufs``, then lower the gain if the true peak would pass the
    ceiling (quiet rather than clipped). Silence stays silence. Returns float32."""
    centred = audio - audio.mean(axis=0, keepdims=True)
    loudness = integrated_lufs(centred, sample_rate)
    if not np.isfinite(loudness) or loudness < _SILENCE_LUFS:
        peak = float(np.max(np.abs(centred))) if centred.size else 0.0
        if peak == 0.0:
            return centred.astype(np.float32)
        gain_db = peak_ceiling_dbfs - 20 * np.log10(peak)
    else:
        gain_db = target_lufs - loudness
    peak_after = true_peak_dbfs(centred) + gain_db
    if peak_after > peak_ceiling_dbfs:
        gain_db -= peak_after - peak_ceiling_dbfs
    return (centred * 10 ** (gain_db / 20)).astype(np.float32)
