"""Lining a generated stem up with the request's tempo.

MusicGen follows "bpm: 120" only loosely. The measured tempo is reported for every stem; with
``time_stretch_to_bpm`` a stem whose tempo is close to the target (after folding half/double time,
which beat trackers confuse) is time-stretched onto it.
"""

import numpy as np

MAX_STRETCH = 0.15  # beyond this a phase vocoder audibly smears; the stem is left as generated
_ALREADY_THERE = 0.005


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
