"""Synthesized instruments: the fallback when no SoundFont is installed, and the sounds that
synthesis does better than samples (the 808 sub bass).

Every voice is a vectorized function of (pitch, length, sample rate) returning one mono note at
full velocity; the renderer caches them, scales by velocity and adds them at their start frame.
"""

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from stemforge.music.notes import Note

Voice = Callable[[int, int, int], np.ndarray]  # (pitch, frames, sample_rate) -> mono float32


def midi_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _envelope(
    frames: int, sr: int, attack: float, decay: float, sustain: float, release: float
) -> np.ndarray:
    """ADSR over ``frames`` samples (the release runs inside the note's last ``release`` seconds)."""
    t = np.arange(frames) / sr
    env = np.where(
        t < attack, t / max(attack, 1e-4), sustain + (1 - sustain) * np.exp(-(t - attack) / max(decay, 1e-4))
    )
    release_frames = min(frames, int(release * sr))
    if release_frames > 0:
        env[frames - release_frames :] *= np.linspace(1.0, 0.0, release_frames)
    return env


def _additive(
    freq: float,
    frames: int,
    sr: int,
    amplitudes: Sequence[float],
    decays: Sequence[float] | None = None,
    vibrato: float = 0.0,
    detune: float = 0.0,
) -> np.ndarray:
    t = np.arange(frames) / sr
    phase = 2 * np.pi * freq * t
    if vibrato:
        phase += vibrato * np.sin(2 * np.pi * 5.5 * t) * np.clip(t / 0.3, 0, 1)
    out = np.zeros(frames)
    nyquist = sr / 2
    for k, amplitude in enumerate(amplitudes, start=1):
        if freq * k >= nyquist or amplitude == 0:
            break
        partial = amplitude * np.sin(k * phase * (1 + detune * (k - 1)))
        if decays is not None:
            partial *= np.exp(-t / decays[k - 1])
        out += partial
    return out


def _noise(frames: int, seed: int) -> np.ndarray:
    # A fixed seed per sound: the same drum hit every time, so renders are repeatable.
    return np.random.default_rng(seed).standard_normal(frames)


def bass(pitch: int, frames: int, sr: int) -> np.ndarray:
    f = midi_hz(pitch)
    tone = _additive(
        f, frames, sr, [1.0, 0.5, 0.3, 0.2, 0.12, 0.08, 0.05], [0.9, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1]
    )
    return tone * _envelope(frames, sr, 0.004, 0.3, 0.7, 0.03)


def sub808(pitch: int, frames: int, sr: int) -> np.ndarray:
    t = np.arange(frames) / sr
    f = midi_hz(pitch)
    # A quick downward pitch sweep into the note, then a long sine with soft saturation.
    freq = f * (1 + 1.5 * np.exp(-t / 0.015))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = np.tanh(1.8 * np.sin(phase)) / np.tanh(1.8)
    return tone * _envelope(frames, sr, 0.002, 0.8, 0.5, 0.05)


def pluck(pitch: int, frames: int, sr: int) -> np.ndarray:
    f = midi_hz(pitch)
    amplitudes = [1.0 / k for k in range(1, 16)]
    decays = [1.2 / (1 + 0.5 * k) for k in range(1, 16)]
    return _additive(f, frames, sr, amplitudes, decays, detune=0.0004) * _envelope(
        frames, sr, 0.002, 5.0, 1.0, 0.04
    )


def keys(pitch: int, frames: int, sr: int) -> np.ndarray:
    f = midi_hz(pitch)
    amplitudes = [1.0, 0.45, 0.25, 0.15, 0.1, 0.06, 0.04, 0.03]
    decays = [1.6, 1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2]
    return _additive(f, frames, sr, amplitudes, decays, detune=0.0008) * _envelope(
        frames, sr, 0.003, 5.0, 1.0, 0.08
    )


def epiano(pitch: int, frames: int, sr: int) -> np.ndarray:
    t = np.arange(frames) / sr
    f = midi_hz(pitch)
    index = 1.5 * np.exp(-t / 0.25)  # FM bell: bright attack that mellows
    tone = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * t))
    return tone * np.exp(-t / 1.8) * _envelope(frames, sr, 0.003, 5.0, 1.0, 0.08)


def organ(pitch: int, frames: int, sr: int) -> np.ndarray:
    f = midi_hz(pitch)
    return (
        _additive(f, frames, sr, [1.0, 0.8, 0.5, 0.4, 0, 0.3, 0, 0.25])
        * 0.5
        * _envelope(frames, sr, 0.01, 0.1, 0.95, 0.03)
    )


def pad(pitch: int, frames: int, sr: int) -> np.ndarray:
    f = midi_hz(pitch)
    amplitudes = [1.0 / k for k in range(1, 9)]
    tone = sum(_additive(f * ratio, frames, sr, amplitudes) for ratio in (0.997, 1.0, 1.003))
    return tone / 3 * _envelope(frames, sr, 0.25, 0.5, 0.85, 0.3)


def strings(pitch: int, frames: int, sr: int) -> np.ndarray:
    f = midi_hz(pitch)
    amplitudes = [1.0 / k for k in range(1, 11)]
    tone = sum(_additive(f * ratio, frames, sr, amplitudes, vibrato=0.02) for ratio in (0.998, 1.002))
    return tone / 2 * _envelope(frames, sr, 0.3, 0.5, 0.9, 0.35)


def lead(pitch: int, frames: int, sr: int) -> np.ndarray:
    f = midi_hz(pitch)
    amplitudes = [1.0 / k for k in range(1, 13)]
    return _additive(f, frames, sr, amplitudes, vibrato=0.03) * _envelope(frames, sr, 0.01, 0.2, 0.8, 0.06)


def voice(pitch: int, frames: int, sr: int) -> np.ndarray:
    """An "ah": harmonics shaped by three vowel formants, with vibrato that grows in."""
    f = midi_hz(pitch)
    formants = ((750.0, 90.0, 1.0), (1200.0, 110.0, 0.5), (2600.0, 160.0, 0.25))
    amplitudes = []
    for k in range(1, 40):
        h = f * k
        amplitudes.append(sum(g / (1 + ((h - c) / bw) ** 2) for c, bw, g in formants) + 0.02 / k)
    return _additive(f, frames, sr, amplitudes, vibrato=0.25 * f / 5.5 / f) * _envelope(
        frames, sr, 0.06, 0.3, 0.85, 0.1
    )


# --- drums (GM key numbers) --------------------------------------------------------------------


def _kick(frames: int, sr: int, boom: float) -> np.ndarray:
    t = np.arange(frames) / sr
    freq = 48 + 110 * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / boom)
    click = _noise(frames, 1) * np.exp(-t / 0.002) * 0.3
    return body + click


def _snare(frames: int, sr: int) -> np.ndarray:
    t = np.arange(frames) / sr
    tone = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05)
    noise = np.diff(_noise(frames + 1, 2)) * 0.5 * np.exp(-t / 0.09)
    return tone * 0.6 + noise


def _metal(frames: int, sr: int, decay: float, seed: int) -> np.ndarray:
    t = np.arange(frames) / sr
    hiss = np.diff(np.diff(_noise(frames + 2, seed))) * 0.35
    return hiss * np.exp(-t / decay)


def _tom(frames: int, sr: int, freq: float) -> np.ndarray:
    t = np.arange(frames) / sr
    sweep = freq * (1 + 0.4 * np.exp(-t / 0.04))
    return np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.exp(-t / 0.25)


def _clap(frames: int, sr: int) -> np.ndarray:
    t = np.arange(frames) / sr
    noise = np.diff(_noise(frames + 1, 3))
    bursts = sum(np.exp(-np.clip(t - d, 0, None) / 0.008) * (t >= d) for d in (0.0, 0.011, 0.022))
    return noise * (bursts * 0.5 + np.exp(-t / 0.12) * (t >= 0.022) * 0.6)


def drum(pitch: int, frames: int, sr: int) -> np.ndarray:
    seconds = {36: 0.5, 35: 0.5, 49: 1.8, 52: 1.5, 51: 0.9, 46: 0.4}.get(pitch, 0.3)
    frames = min(frames, int(seconds * sr)) if frames < int(seconds * sr) else int(seconds * sr)
    if pitch in (35, 36):
        return _kick(frames, sr, 0.18)
    if pitch in (38, 40):
        return _snare(frames, sr)
    if pitch == 37:
        t = np.arange(frames) / sr
        return np.sin(2 * np.pi * 1700 * t) * np.exp(-t / 0.012)
    if pitch == 39:
        return _clap(frames, sr)
    if pitch in (42, 44, 70, 69):
        return _metal(frames, sr, 0.03 if pitch != 70 else 0.05, pitch)
    if pitch in (46, 54):
        return _metal(frames, sr, 0.18, pitch)
    if pitch in (49, 52, 57):
        return _metal(frames, sr, 0.7, pitch) * 0.8
    if pitch in (51, 53, 59):
        t = np.arange(frames) / sr
        ping = sum(np.sin(2 * np.pi * f * t) for f in (3150, 4720, 5340)) * 0.08 * np.exp(-t / 0.4)
        return _metal(frames, sr, 0.35, pitch) * 0.4 + ping
    if pitch in (41, 43, 45, 47, 48, 50):
        return _tom(frames, sr, {41: 80, 43: 95, 45: 110, 47: 130, 48: 150, 50: 175}[pitch])
    if pitch in (60, 61, 62, 63, 64):
        return _tom(frames, sr, {60: 400, 61: 330, 62: 350, 63: 300, 64: 210}[pitch]) * np.exp(
            -np.arange(frames) / sr / 0.08
        )
    if pitch == 56:
        t = np.arange(frames) / sr
        return (
            (np.sign(np.sin(2 * np.pi * 540 * t)) + np.sign(np.sin(2 * np.pi * 800 * t)))
            * 0.2
            * np.exp(-t / 0.07)
        )
    t = np.arange(frames) / sr
    return np.sin(2 * np.pi * 2500 * t) * np.exp(-t / 0.02)


VOICES: dict[str, Voice] = {
    "bass": bass,
    "sub808": sub808,
    "pluck": pluck,
    "keys": keys,
    "epiano": epiano,
    "organ": organ,
    "pad": pad,
    "strings": strings,
    "lead": lead,
    "voice": voice,
    "kit": drum,
}

_LENGTH_QUANTUM = 512  # note lengths are rounded up to this many frames so the cache hits


@lru_cache(maxsize=2048)
def _cached_note(voice_name: str, pitch: int, frames: int, sr: int) -> np.ndarray:
    return VOICES[voice_name](pitch, frames, sr).astype(np.float32)


def render_voice(voice_name: str, notes: Sequence[Note], num_frames: int, sample_rate: int) -> np.ndarray:
    """Mono float32 ``(num_frames,)``: every note of a part played by one synthesized voice."""
    out = np.zeros(num_frames, dtype=np.float32)
    for note in notes:
        start = round(note.start * sample_rate)
        if start >= num_frames:
            continue
        frames = int(np.ceil(note.duration * sample_rate / _LENGTH_QUANTUM)) * _LENGTH_QUANTUM
        wave = _cached_note(voice_name, note.pitch, max(frames, _LENGTH_QUANTUM), sample_rate)
        end = min(num_frames, start + len(wave))
        out[start:end] += (note.velocity / 127.0) ** 1.6 * wave[: end - start]
    return out


def render_sub808_line(notes: Sequence[Note], num_frames: int, sample_rate: int) -> np.ndarray:
    """Mono float32: an 808 played as one monophonic voice, the way the drum machine does it.

    One oscillator runs through the whole line with a continuous phase; each note sets its
    pitch (with the short downward "knock" sweep) and its level, the level moves from where it
    is to the new note's over a few milliseconds, and a note's end is a raised-cosine release
    after its length (cut short only by the next note). No note starts or stops on a step, so
    nothing ticks at note ends, and overlapping notes never beat against each other."""
    sr = sample_rate
    ordered = sorted((n for n in notes if round(n.start * sr) < num_frames), key=lambda n: n.start)
    if not ordered or num_frames <= 0:
        return np.zeros(max(0, num_frames), dtype=np.float32)
    attack, release, knock = int(0.004 * sr), int(0.08 * sr), 0.012
    freq = np.full(num_frames, midi_hz(ordered[0].pitch), dtype=np.float64)
    level = np.zeros(num_frames, dtype=np.float64)
    current = 0.0
    for index, note in enumerate(ordered):
        start = round(note.start * sr)
        stop = (
            num_frames if index + 1 == len(ordered) else min(num_frames, round(ordered[index + 1].start * sr))
        )
        if stop <= start:
            continue
        t = np.arange(stop - start) / sr
        freq[start:stop] = midi_hz(note.pitch) * (1 + 1.2 * np.exp(-t / knock))
        peak = (note.velocity / 127.0) ** 1.6
        body = peak * (0.55 + 0.45 * np.exp(-t / 0.8))
        ramp = np.clip(np.arange(stop - start) / max(attack, 1), 0.0, 1.0)
        ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
        envelope = current + (body - current) * ramp
        held = round(note.duration * sr)
        if held < len(envelope):
            fall = np.clip((np.arange(len(envelope) - held)) / max(release, 1), 0.0, 1.0)
            envelope[held:] *= 0.5 + 0.5 * np.cos(np.pi * fall)
        level[start:stop] = envelope
        current = float(envelope[-1])
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = np.tanh(1.8 * np.sin(phase)) / np.tanh(1.8)
    return (tone * level).astype(np.float32)
