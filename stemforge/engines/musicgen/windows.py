"""Frame and window arithmetic for MusicGen's token timeline. Pure: no torch.

MusicGen emits ``frame_rate`` frames per second, one token per codebook per frame, and sees at
most one window of frames at a time. Longer stems are generated window by window: every window
after the first is prompted with the tail of what came before (audiocraft's continuation), so
the music carries on through the boundary instead of restarting.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: int  # frame (in the stem's timeline) where this window's new frames begin
    prompt: int  # frames before ``start`` fed back as the prompt
    new: int  # frames this window generates

    @property
    def first_frame(self) -> int:
        """Frame where the window's content, prompt included, begins."""
        return self.start - self.prompt

    @property
    def end(self) -> int:
        return self.start + self.new


def frames_for_seconds(seconds: float, frame_rate: float) -> int:
    """Frames covering ``seconds``, rounded up (a tolerance keeps 10.0 s at 500, not 501)."""
    return max(1, math.ceil(seconds * frame_rate - 1e-6))


def plan_windows(total: int, window: int, stride: int) -> list[Window]:
    """Cover ``total`` frames: a first window of up to ``window`` frames, then windows adding at
    most ``stride`` frames each, prompted by the previous ``window - stride`` frames."""
    if total < 1 or window < 1:
        raise ValueError(f"need at least one frame and a window of one frame, got {total} and {window}")
    if not 0 < stride < window:
        raise ValueError(f"stride must be positive and shorter than the window, got {stride} and {window}")
    windows = [Window(start=0, prompt=0, new=min(total, window))]
    done = windows[0].new
    while done < total:
        new = min(stride, total - done)
        windows.append(Window(start=done, prompt=window - stride, new=new))
        done += new
    return windows


def plan_windows_after(prefix: int, total: int, window: int, stride: int) -> list[Window]:
    """Cover frames ``prefix`` .. ``total`` after ``prefix`` frames that exist already (an audio
    prompt to continue): the first window is prompted by as much of them as leaves it room to
    add a stride, the rest as in ``plan_windows``."""
    if prefix <= 0:
        return plan_windows(total, window, stride)
    if not 0 < stride < window:
        raise ValueError(f"stride must be positive and shorter than the window, got {stride} and {window}")
    if total <= prefix:
        raise ValueError(f"nothing to add: {total} frames in all after a prompt of {prefix}")
    prompt = min(prefix, window - stride)
    windows = [Window(start=prefix, prompt=prompt, new=min(window - prompt, total - prefix))]
    done = windows[0].end
    while done < total:
        new = min(stride, total - done)
        windows.append(Window(start=done, prompt=window - stride, new=new))
        done += new
    return windows


def codebook_delays(num_codebooks: int, audio_channels: int) -> list[int]:
    """MusicGen's delay pattern: codebook ``k`` runs ``k`` steps behind the first. Stereo
    checkpoints interleave left/right codebooks, which share a delay."""
    return [k // audio_channels for k in range(num_codebooks)]


def decode_steps(prompt: int, new: int, max_delay: int) -> tuple[int, int]:
    """Sequence length (start token, frames and the delay tail) and the number of forward passes
    that produce a window of ``new`` frames after ``prompt`` frames."""
    length = 1 + prompt + new + max_delay
    return length, new + max_delay
