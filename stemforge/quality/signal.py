"""Technical soundness of one stem: loudness, peaks, clipping, silence, DC and rumble, brightness.

Loudness and true peak are the service's own BS.1770-4 meters (``stemforge.dsp.loudness``,
checked against pyloudnorm there); the rest is numpy and scipy over the stored float audio.
"""

from dataclasses import dataclass

import numpy as np
from scipy.signal import welch

from stemforge.dsp.loudness import integrated_lufs, true_peak_dbfs

# A sample at or past this magnitude is full scale: it is (or will be, once written as PCM) clipped.
FULL_SCALE = 0.999
SILENCE_DBFS = -60.0  # a window quieter than this (RMS) is silent
SILENCE_WINDOW_SECONDS = 0.05
SUB_BASS_HZ = 20.0
_WELCH_SECONDS = 0.186  # 8192 samples at 44.1 kHz: 5.4 Hz bins, enough to split off < 20 Hz


@dataclass(frozen=True)
class SignalMetrics:
    loudness_lufs: float | None  # integrated, BS.1770-4; None for silence (below the -70 LUFS gate)
    true_peak_dbtp: float | None  # 4x oversampled peak; None for digital silence
    clipped_samples: int  # over all channels
    silence_share: float  # 0..1 of 50 ms windows under -60 dBFS RMS
    dc_offset: float  # largest per-channel mean, in full-scale units (1.0 = full scale)
    sub_20hz_share: float  # 0..1 of the signal's power below 20 Hz (DC removed)
    spectral_centroid_hz: float | None  # of the long-term power spectrum; None for silence


def _mono(audio: np.ndarray) -> np.ndarray:
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def _channels(audio: np.ndarray) -> np.ndarray:
    """``(channels, frames)`` float64."""
    return np.asarray(audio, dtype=np.float64).reshape(audio.shape[0], -1).T


def finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def clipped_samples(audio: np.ndarray) -> int:
    """Samples at full scale or beyond, over all channels. (Flat runs at a lower peak are not
    counted: a brickwall limiter, which every engine's mastering ends with, makes them too.)"""
    return int(np.count_nonzero(np.abs(audio) >= FULL_SCALE))


def silence_share(audio: np.ndarray, sample_rate: int) -> float:
    mono = _mono(np.asarray(audio, dtype=np.float64))
    window = max(1, int(SILENCE_WINDOW_SECONDS * sample_rate))
    count = len(mono) // window
    if count == 0:
        return 1.0 if not np.any(mono) else 0.0
    frames = mono[: count * window].reshape(count, window)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    threshold = 10 ** (SILENCE_DBFS / 20)
    return float(np.mean(rms < threshold))


def dc_offset(audio: np.ndarray) -> float:
    if audio.size == 0:
        return 0.0
    return float(np.max(np.abs(_channels(audio).mean(axis=1))))


def _power_spectrum(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    mono = _mono(np.asarray(audio, dtype=np.float64))
    segment = min(len(mono), int(_WELCH_SECONDS * sample_rate))
    # detrend="constant" takes the DC out of every segment: DC is reported on its own.
    return welch(mono, fs=sample_rate, nperseg=max(segment, 1), detrend="constant")


def spectral_balance(audio: np.ndarray, sample_rate: int) -> tuple[float, float | None]:
    """(share of power below 20 Hz, spectral centroid in Hz) of the long-term spectrum."""
    if audio.shape[0] < 16:
        return 0.0, None
    freqs, power = _power_spectrum(audio, sample_rate)
    total = float(power.sum())
    if total <= 0:
        return 0.0, None
    sub = float(power[freqs < SUB_BASS_HZ].sum()) / total
    centroid = float((freqs * power).sum() / total)
    return sub, centroid


def signal_metrics(audio: np.ndarray, sample_rate: int) -> SignalMetrics:
    """Every technical metric of ``audio`` (``(frames,)`` or ``(frames, channels)``, float)."""
    sub, centroid = spectral_balance(audio, sample_rate)
    return SignalMetrics(
        loudness_lufs=finite_or_none(integrated_lufs(audio, sample_rate)),
        true_peak_dbtp=finite_or_none(true_peak_dbfs(audio)),
        clipped_samples=clipped_samples(audio),
        silence_share=silence_share(audio, sample_rate),
        dc_offset=dc_offset(audio),
        sub_20hz_share=sub,
        spectral_centroid_hz=centroid,
    )
