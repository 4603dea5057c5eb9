"""A stem's last stage: DC removal (a high-pass, not a mean: a mean leaves every drift in and
puts a step at the start), gain to the loudness target, a peak limiter so dynamic stems (drums)
can reach that target under the ceiling, fades at both edges and a final true-peak check."""

import numpy as np
import pedalboard as pb

from stemforge.dsp.filters import dc_block, fade_edges
from stemforge.dsp.loudness import integrated_lufs, normalize_loudness, true_peak_dbfs

# The limiter holds sample peaks this far under the ceiling so inter-sample peaks stay under it.
_LIMITER_MARGIN_DB = 1.0
_METER_MARGIN_DB = 0.5


def master_stem(
    audio: np.ndarray, sample_rate: int, target_lufs: float, peak_ceiling_dbfs: float
) -> np.ndarray:
    """float32 ``(frames, 2)`` at ``target_lufs`` (within about 0.5 LU when the limiter works
    hard) with true peak under ``peak_ceiling_dbfs``; silence stays silence."""
    centred = dc_block(audio, sample_rate)
    centred -= centred.mean(axis=0, keepdims=True)  # what the filter's edges left: tiny
    loudness = integrated_lufs(centred, sample_rate)
    if not np.isfinite(loudness):
        quiet = normalize_loudness(centred, sample_rate, target_lufs, peak_ceiling_dbfs)
        return fade_edges(quiet, sample_rate)
    gained = centred * np.float32(10 ** ((target_lufs - loudness) / 20))
    threshold = peak_ceiling_dbfs - _LIMITER_MARGIN_DB
    if 20 * np.log10(float(np.max(np.abs(gained))) + 1e-12) > threshold:
        limiter = pb.Pedalboard([pb.Limiter(threshold_db=threshold, release_ms=80.0)])
        gained = limiter(gained.T.copy(), float(sample_rate), reset=True).T
        # Limiting took some loudness away: give it back (the margin absorbs the lift).
        gained = gained * np.float32(10 ** ((target_lufs - integrated_lufs(gained, sample_rate)) / 20))
    # A limiter on lopsided peaks (an upright bass's samples) adds DC: blocked again.
    gained = dc_block(np.ascontiguousarray(gained, dtype=np.float32), sample_rate)
    gained = fade_edges(gained, sample_rate)
    # A fade over a lopsided start leaves a little DC: its mean is removed, which moves the
    # edges by that much (well under -60 dBFS).
    gained -= gained.mean(axis=0, keepdims=True)
    # The meter's short filter may under-read content near Nyquist by a few tenths of a dB.
    ceiling = peak_ceiling_dbfs - _METER_MARGIN_DB
    peak = true_peak_dbfs(gained)
    if peak > ceiling:
        gained *= np.float32(10 ** ((ceiling - peak) / 20))
    return gained
