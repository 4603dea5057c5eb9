"""A breath: the short inhale a singer takes in the rest between two phrases (filtered noise)."""

import numpy as np
from scipy import signal

BREATH_MAX_S = 0.38
BREATH_MIN_GAP_S = 0.22  # rests shorter than this get no breath
BREATH_LEVEL_DB = -24.0  # RMS under the sung voice's RMS


def breath(duration_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """An inhale of ``duration_s`` seconds, RMS 1 while it sounds: a hiss strongest around
    1-5 kHz with a soft resonance near 1.6 kHz, swelling in and falling away."""
    n = max(0, round(duration_s * sample_rate))
    if n < 16:
        return np.zeros(n)
    noise = rng.standard_normal(n + 2048)
    band = signal.butter(
        2, [600.0, min(7000.0, 0.45 * sample_rate)], "bandpass", fs=sample_rate, output="sos"
    )
    peak = signal.butter(1, [1300.0, 2000.0], "bandpass", fs=sample_rate, output="sos")
    hiss = signal.sosfilt(band, noise)
    hiss = (hiss + 1.5 * signal.sosfilt(peak, noise))[2048:]  # past the filters' start-up
    x = np.linspace(0.0, 1.0, n)
    envelope = np.sin(np.pi * x**0.7) ** 2
    out = hiss * envelope
    rms = float(np.sqrt(np.mean(out[envelope > 0.1] ** 2)))
    return out / rms if rms > 0 else out


def breath_window(gap_start: float, gap_end: float) -> tuple[float, float] | None:
    """Where the breath goes in a rest: ending just before the next phrase, at most
    ``BREATH_MAX_S`` long and at most 60 % of the rest; None for a rest too short to breathe."""
    gap = gap_end - gap_start
    if gap < BREATH_MIN_GAP_S:
        return None
    end = gap_end - 0.04
    return (end - min(BREATH_MAX_S, 0.6 * gap), end)
