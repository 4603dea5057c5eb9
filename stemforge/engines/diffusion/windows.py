"""Stems longer than one diffusion window, on the request's bar grid. Pure numpy.

A diffusion model makes at most one window per call (47.55 s for Stable Audio Open 1.0, about
10 s for AudioLDM 2, a 5.12 s image for Riffusion). A longer stem is made of windows that all
start on a downbeat and overlap by whole bars; each is generated from its own seed (derived from
the request's), lined up on the grid, and the overlap is crossfaded from one downbeat to the
next, so the seam falls where a bar changes anyway and the stem has exactly the length asked.
A window too short for two bars (Riffusion at a slow tempo) falls back to the beat grid: windows
start on beats and overlap by one beat.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AudioWindow:
    start: float  # seconds into the stem where the window begins (a downbeat)
    length: float  # seconds of the stem it covers, overlap included
    fade: float  # seconds crossfaded with the previous window at its start (0 for the first)


def bar_seconds(bpm: float, beats_per_bar: int = 4) -> float:
    return 60.0 / bpm * beats_per_bar


def plan_windows(
    duration: float, bar: float, max_window: float, overlap_bars: int = 1, beats_per_bar: int = 4
) -> list[AudioWindow]:
    """Cover ``duration`` seconds with windows of at most ``max_window`` seconds. One window when
    it fits; otherwise the fewest equal windows (one pipeline call makes them all) that start
    every whole number of bars and overlap by ``overlap_bars`` bars, or, when a window cannot
    hold a bar more than that, every whole number of beats overlapping by one beat. Raises
    ``ValueError`` when a window cannot even hold two beats."""
    if duration <= 0 or max_window <= 0:
        raise ValueError(f"duration and window must be positive, got {duration} and {max_window}")
    if duration <= max_window:
        return [AudioWindow(0.0, duration, 0.0)]
    overlap = overlap_bars * bar
    stride_bars = math.floor((max_window - overlap) / bar + 1e-9)
    if stride_bars < 1:
        beat = bar / beats_per_bar
        if max_window < 2 * beat:
            raise ValueError(
                f"a {max_window:.2f} s window cannot hold two beats of {beat:.2f} s; a faster tempo or "
                "a longer window is needed for stems longer than one window"
            )
        return plan_windows(duration, beat, max_window, 1, 1)
    # The fewest windows that can cover the stem, then the shortest whole-bar stride that does:
    # cost grows with window length, so no window is longer than it needs to be.
    count = math.ceil((duration - overlap) / (stride_bars * bar) - 1e-9)
    stride = math.ceil((duration - overlap) / count / bar - 1e-9) * bar
    length = stride + overlap
    return [AudioWindow(k * stride, length, overlap if k else 0.0) for k in range(count)]


def stitch(
    pieces: list[np.ndarray], windows: list[AudioWindow], sample_rate: int, num_frames: int
) -> np.ndarray:
    """Lay ``pieces`` (``(frames, channels)``, one per window) on one timeline of ``num_frames``
    frames, each overlap crossfaded with equal power (the windows are independent takes, so
    their sum keeps its loudness with sine/cosine gains, not linear ones)."""
    if len(pieces) != len(windows) or not pieces:
        raise ValueError(f"need one piece per window, got {len(pieces)} pieces for {len(windows)} windows")
    channels = pieces[0].shape[1]
    out = np.zeros((num_frames, channels), dtype=np.float32)
    for piece, window in zip(pieces, windows, strict=True):
        begin = round(window.start * sample_rate)
        if begin >= num_frames:
            break
        piece = piece[: num_frames - begin].astype(np.float32)
        fade = min(round(window.fade * sample_rate), piece.shape[0])
        if fade:
            angle = np.linspace(0.0, np.pi / 2, fade, dtype=np.float32)[:, None]
            out[begin : begin + fade] *= np.cos(angle)
            piece = piece.copy()
            piece[:fade] *= np.sin(angle)
            out[begin : begin + fade] += piece[:fade]
            out[begin + fade : begin + piece.shape[0]] = piece[fade:]
        else:
            out[begin : begin + piece.shape[0]] = piece
    return out
