"""Synthetic signals with known answers, shared by the quality tests."""

import numpy as np

from stemforge.music.chords import parse_chord
from stemforge.music.theory import chord_pitch_set

SR = 44_100


def sine(freq: float, seconds: float, amplitude: float, sample_rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stereo(mono: np.ndarray) -> np.ndarray:
    return np.stack([mono, mono], axis=1)


def click_track(bpm: float, seconds: float, shift: float = 0.0, sample_rate: int = SR) -> np.ndarray:
    """Stereo clicks on every beat (accented downbeats), the first at ``shift`` seconds."""
    audio = np.zeros(int(seconds * sample_rate), dtype=np.float32)
    t = np.arange(int(0.03 * sample_rate)) / sample_rate
    click = (np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.005)).astype(np.float32)
    beat = 0
    while (start := round((beat * 60.0 / bpm + shift) * sample_rate)) + len(click) < len(audio):
        audio[start : start + len(click)] += click * (0.8 if beat % 4 == 0 else 0.5)
        beat += 1
    return stereo(audio)


def chord_sequence(symbols: list[str], bar_seconds: float, sample_rate: int = SR) -> np.ndarray:
    """Each chord held for a bar, its tones as decaying sines in the middle octave."""
    bars = []
    t = np.arange(int(bar_seconds * sample_rate)) / sample_rate
    for symbol in symbols:
        tones = sorted(chord_pitch_set(parse_chord(symbol)))
        bar = sum(np.sin(2 * np.pi * 440.0 * 2 ** ((60 + pc - 69) / 12) * t) for pc in tones)
        bars.append(0.2 * bar * np.exp(-t / bar_seconds))
    return stereo(np.concatenate(bars).astype(np.float32))
