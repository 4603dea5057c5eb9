"""Loudness normalization to a LUFS target with a true-peak ceiling (ITU-R BS.1770-4).

The meters are vectorized versions of BS.1770 (K-weighting filters from pyloudnorm, block
energies from cumulative sums, a 48-tap 4x polyphase interpolator for true peak): they agree
with pyloudnorm and ``resample_poly`` to a few hundredths of a dB at a fraction of the time,
which matters when a 30 s stem must be rendered in well under half a second.
"""

from functools import lru_cache

import numpy as np
import pyloudnorm
from scipy.signal import firwin, sosfilt, upfirdn

DEFAULT_TARGET_LUFS = -14.0
DEFAULT_PEAK_CEILING_DBFS = -1.0
_SILENCE_LUFS = -70.0
_BLOCK_SECONDS = 0.4
_BLOCK_STEP = 0.25  # 75 % overlap
_OVERSAMPLE = 4
_INTERPOLATOR_TAPS = 48  # 12 per phase, as BS.1770-4 annex 2


@lru_cache(maxsize=8)
def _k_weighting_sos(sample_rate: int) -> np.ndarray:
    meter = pyloudnorm.Meter(sample_rate)
    sections = []
    for stage in meter._filters.values():
        b = np.asarray(stage.b, dtype=np.float64) * stage.passband_gain
        a = np.asarray(stage.a, dtype=np.float64)
        sections.append(np.concatenate([b / a[0], a / a[0]]))
    return np.vstack(sections)


@lru_cache(maxsize=1)
def _interpolator() -> np.ndarray:
    # Cut off at the original Nyquist; gain OVERSAMPLE so each phase has unity gain. Within
    # 0.2 dB of a long polyphase filter up to 18 kHz.
    return firwin(_INTERPOLATOR_TAPS, 1.0 / _OVERSAMPLE, window="hamming") * _OVERSAMPLE


@lru_cache(maxsize=1)
def _phases() -> tuple[np.ndarray, float]:
    """The interpolator split into its polyphase filters, as a (taps per phase, phases) matrix
    applied to windows of the input (newest sample last), and the largest gain any phase can
    have on a window (the sum of its absolute taps)."""
    taps = _interpolator()
    per_phase = len(taps) // _OVERSAMPLE
    matrix = np.stack([taps[r::_OVERSAMPLE][::-1] for r in range(_OVERSAMPLE)], axis=1)
    bound = float(np.max(np.abs(matrix).sum(axis=0)))
    return matrix.astype(np.float32).reshape(per_phase, _OVERSAMPLE), bound


def true_peak_dbfs(audio: np.ndarray) -> float:
    """Peak of the 4x oversampled signal (BS.1770 annex 2), in dBFS.

    Within 0.2 dB of a long-filter oversampler for content below 18 kHz; like the standard's
    48-tap filter it under-reads energy right at the Nyquist frequency (white noise).

    Only windows that could beat the sample peak are interpolated: a window whose largest sample
    is under ``peak / bound`` cannot, so the result equals full oversampling at a fraction of
    the cost."""
    if audio.size == 0:
        return -np.inf
    channels = audio.reshape(audio.shape[0], -1).T
    peak = float(np.max(np.abs(channels)))
    if peak == 0:
        return -np.inf
    matrix, bound = _phases()
    width = matrix.shape[0]
    for channel in channels:
        padded = np.concatenate(
            [np.zeros(width - 1, np.float32), channel.astype(np.float32), np.zeros(width - 1, np.float32)]
        )
        loud = np.abs(padded) >= peak / bound
        count = np.count_nonzero(loud)
        if count == 0:  # a quieter channel that cannot beat the other's peak
            continue
        if count * 4 > len(padded):  # dense: filtering all beats gathering
            oversampled = upfirdn(_interpolator(), channel.astype(np.float32), up=_OVERSAMPLE)
            peak = max(peak, float(np.max(np.abs(oversampled))))
            continue
        # Windows (ending at index i) that hold a loud sample: a running count over the window.
        counts = np.cumsum(loud, dtype=np.int64)
        in_window = counts[width - 1 :] - np.concatenate([[0], counts[: len(padded) - width]])
        ends = np.flatnonzero(in_window > 0) + (width - 1)
        windows = np.lib.stride_tricks.sliding_window_view(padded, width)[ends - (width - 1)]
        peak = max(peak, float(np.max(np.abs(windows @ matrix))))
    return 20 * np.log10(peak)


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    # BS.1770 needs at least one 400 ms gating block.
    if audio.shape[0] < int(_BLOCK_SECONDS * sample_rate):
        return -np.inf
    channels = audio.reshape(audio.shape[0], -1).T.astype(np.float64)
    weighted = sosfilt(_k_weighting_sos(sample_rate), channels, axis=1)
    block = int(_BLOCK_SECONDS * sample_rate)
    seconds = audio.shape[0] / sample_rate
    count = round((seconds - _BLOCK_SECONDS) / (_BLOCK_SECONDS * _BLOCK_STEP)) + 1
    starts = (np.arange(count) * _BLOCK_SECONDS * _BLOCK_STEP * sample_rate).astype(np.int64)
    starts = starts[starts + block <= audio.shape[0]]
    # L and R weigh 1.0 each, so one running sum of their squares gives every block's energy.
    cumulative = np.concatenate([[0.0], np.cumsum(np.sum(weighted**2, axis=0))])
    total = (cumulative[starts + block] - cumulative[starts]) / block
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(total)
    gated = block_lufs >= _SILENCE_LUFS
    if not np.any(gated):
        return -np.inf
    relative = -0.691 + 10 * np.log10(total[gated].mean()) - 10.0
    gated &= block_lufs > relative
    if not np.any(gated):
        return -np.inf
    return float(-0.691 + 10 * np.log10(total[gated].mean()))


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
