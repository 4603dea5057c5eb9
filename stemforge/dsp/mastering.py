"""A stem's last stage: DC removal, gain to the loudness target, a peak limiter so dynamic
stems (drums) can reach that target under the ceiling, and a final true-peak check."""

import numpy as np
import pedalboard as pb

from stemforge.dsp.loudness import integrated_lufs, normalize_loudness, true_peak_dbfs

# The limiter holds sample peaks this far under the ceiling so inter-sample peaks stay under it.
_LIMITER_MARGIN_DB = 1.0
# Fade-out over the last frames: the stem ends in silence, never on a click.
_FADE_SECONDS = 0.03
_METER_MARGIN_DB = 0.5


def fade_out(audio: np.ndarray, sample_rate: int, seconds: float = _FADE_SECONDS) -> np.ndarray:
    frames = min(audio.shape[0], int(seconds * sample_rate))
    if frames > 0:
        ramp = np.cos(np.linspace(0.0, np.pi / 2, frames, dtype=np.float32)) ** 2
        audio[-frames:] *= ramp[:, None]
    return audio


def master_stem(
    audio: np.ndarray, sample_rate: int, target_lufs: float, peak_ceiling_dbfs: float
) -> np.ndarray:
    """float32 ``(frames, 2)`` at ``target_lufs`` (within about 0.5 LU when the limiter works
    hard) with true peak under ``peak_ceiling_dbfs``; silence stays silence."""
    centred = (audio - audio.mean(axis=0, keepdims=True)).astype(np.float32)
    loudness = integrated_lufs(centred, sample_rate)
    if not np.isfinite(loudness):
        return normalize_loudness(centred, sample_rate, target_lufs, peak_ceiling_dbfs)
    gained = centred * np.float32(10 ** ((target_lufs - loudness) / 20))
    threshold = peak_ceiling_dbfs - _LIMITER_MARGIN_DB
    if 20 * np.log10(float(np.max(np.abs(gained))) + 1e-12) > threshold:
        limiter = pb.Pedalboard([pb.Limiter(threshold_db=threshold, release_ms=80.0)])
        gained = limiter(gained.T.copy(), float(sample_rate), reset=True).T
        # Limiting took some loudness away: give it back (the margin absorbs the lift).
        gained = gained * np.float32(10 ** ((target_lufs - integrated_lufs(gained, sample_rate)) / 20))
    gained = fade_out(np.ascontiguousarray(gained, dtype=np.float32), sample_rate)
    # The meter's short filter may under-read content near Nyquist by a few tenths of a dB.
    ceiling = peak_ceiling_dbfs - _METER_MARGIN_DB
    peak = true_peak_dbfs(gained)
    if peak > ceiling:
        gained *= np.float32(10 ** ((ceiling - peak) / 20))
    return gained - gained.mean(axis=0, keepdims=True)
