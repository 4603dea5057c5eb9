"""Clean-signal helpers every stem goes through: a DC blocker / high-pass and edge fades.

SoundFont samples (the GM pads above all) carry a DC offset, and a stem that starts or stops on a
non-zero sample clicks. These are plain Butterworth sections (scipy), causal so a note's attack is
never smeared ahead of it.
"""

from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

# Every stem loses what is under this (DC and sub-sonic drift) before anything else is done to it.
DC_BLOCK_HZ = 20.0
# Fades at the edges of every stem: long enough to remove a step, short enough not to be heard.
FADE_IN_SECONDS = 0.004
FADE_OUT_SECONDS = 0.03


@lru_cache(maxsize=32)
def _highpass_sos(cutoff_hz: float, sample_rate: int, order: int) -> np.ndarray:
    return butter(order, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")


def highpass(audio: np.ndarray, sample_rate: int, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """``audio`` ``(frames,)`` or ``(frames, channels)`` high-passed at ``cutoff_hz``; float32."""
    if audio.shape[0] == 0:
        return audio.astype(np.float32)
    sos = _highpass_sos(float(cutoff_hz), int(sample_rate), int(order))
    return sosfilt(sos, audio.astype(np.float64), axis=0).astype(np.float32)


def dc_block(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """DC and sub-sonic content removed (second-order high-pass at ``DC_BLOCK_HZ``)."""
    return highpass(audio, sample_rate, DC_BLOCK_HZ, order=2)


def fade_edges(
    audio: np.ndarray,
    sample_rate: int,
    fade_in: float = FADE_IN_SECONDS,
    fade_out: float = FADE_OUT_SECONDS,
) -> np.ndarray:
    """Raised-cosine fades over the first ``fade_in`` and last ``fade_out`` seconds, in place:
    the stem starts and ends on (near) zero, never on a step."""
    frames = audio.shape[0]
    shape = (-1,) + (1,) * (audio.ndim - 1)
    head = min(frames, int(fade_in * sample_rate))
    if head > 0:
        ramp = np.sin(np.linspace(0.0, np.pi / 2, head, dtype=np.float32)) ** 2
        audio[:head] *= ramp.reshape(shape)
    tail = min(frames, int(fade_out * sample_rate))
    if tail > 0:
        ramp = np.cos(np.linspace(0.0, np.pi / 2, tail, dtype=np.float32)) ** 2
        audio[-tail:] *= ramp.reshape(shape)
    return audio
