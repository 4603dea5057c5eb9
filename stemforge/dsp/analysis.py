"""Listening by numbers: the chord of each bar from chroma templates and the pitch class the
bass plays at each downbeat. Used by the tests and the benchmark to check what was rendered."""

from collections.abc import Sequence

import numpy as np

from stemforge.music.chords import Chord
from stemforge.music.theory import chord_pitch_set

_N_FFT = 8192
_HOP = 2048


def _template(pitch_classes: frozenset[int]) -> np.ndarray:
    vector = np.zeros(12)
    vector[list(pitch_classes)] = 1.0
    return vector / np.linalg.norm(vector)


def candidate_chords(requested: Sequence[Chord]) -> list[frozenset[int]]:
    """The requested chords' pitch sets and all 24 major and minor triads: what a bar may be."""
    sets = {chord_pitch_set(chord) for chord in requested} | {chord.pitch_classes for chord in requested}
    for root in range(12):
        sets.add(frozenset({root, (root + 4) % 12, (root + 7) % 12}))
        sets.add(frozenset({root, (root + 3) % 12, (root + 7) % 12}))
    return sorted(sets, key=lambda s: sorted(s))


def bar_chroma(audio: np.ndarray, sample_rate: int, bar_seconds: float, bars: int) -> np.ndarray:
    """Mean chroma of each bar, ``(bars, 12)``, skipping each bar's first eighth (the last
    chord's ring)."""
    import librosa

    mono = (audio.mean(axis=1) if audio.ndim == 2 else audio).astype(np.float32)
    chroma = librosa.feature.chroma_stft(y=mono, sr=sample_rate, n_fft=_N_FFT, hop_length=_HOP, tuning=0.0)
    times = librosa.frames_to_time(np.arange(chroma.shape[1]), sr=sample_rate, hop_length=_HOP)
    out = np.zeros((bars, 12))
    for bar in range(bars):
        start, end = (bar + 0.125) * bar_seconds, (bar + 1) * bar_seconds
        frames = (times >= start) & (times < end)
        if np.any(frames):
            out[bar] = chroma[:, frames].mean(axis=1)
    return out


def recover_chords(
    audio: np.ndarray, sample_rate: int, bar_seconds: float, requested: Sequence[Chord]
) -> list[frozenset[int]]:
    """Best-matching pitch set for each of ``len(requested)`` bars (cosine with templates)."""
    candidates = candidate_chords(requested)
    templates = np.stack([_template(c) for c in candidates])
    chroma = bar_chroma(audio, sample_rate, bar_seconds, len(requested))
    norms = np.linalg.norm(chroma, axis=1, keepdims=True)
    scores = (chroma / np.maximum(norms, 1e-12)) @ templates.T
    return [candidates[int(i)] for i in np.argmax(scores, axis=1)]


def chord_match_ratio(
    audio: np.ndarray, sample_rate: int, bar_seconds: float, requested: Sequence[Chord]
) -> float:
    """Share of bars whose recovered chord is the requested one (a slash chord matches with or
    without its bass note: the bass player owns that note)."""
    recovered = recover_chords(audio, sample_rate, bar_seconds, requested)
    hits = sum(r in (chord_pitch_set(c), c.pitch_classes) for r, c in zip(recovered, requested, strict=True))
    return hits / len(requested)


_HARMONIC_WEIGHTS = (1.0, 0.8, 0.65, 0.5, 0.4, 0.3)


def pitch_class_at(
    audio: np.ndarray,
    sample_rate: int,
    start: float,
    seconds: float,
    low_pitch: int = 24,
    high_pitch: int = 60,
) -> int:
    """Pitch class of the strongest low note in ``[start, start + seconds)``, by harmonic
    summation: each candidate pitch scores the spectrum at its first six harmonics, so a low
    note whose fundamental is weak (a bass sample) is still heard at its own pitch, not at its
    loud third harmonic."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    segment = mono[int(start * sample_rate) : int((start + seconds) * sample_rate)]
    size = 1 << 16
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=size))
    bin_hz = sample_rate / size
    candidates = np.arange(low_pitch, high_pitch + 1)
    fundamentals = 440.0 * 2.0 ** ((candidates - 69) / 12)
    salience = np.zeros(len(candidates))
    for harmonic, weight in enumerate(_HARMONIC_WEIGHTS, start=1):
        bins = np.round(fundamentals * harmonic / bin_hz).astype(int)
        # The loudest bin within a quarter tone of the harmonic.
        spread = np.maximum(1, np.round(fundamentals * harmonic * 0.029 / bin_hz).astype(int))
        salience += weight * np.array(
            [spectrum[b - w : b + w + 1].max() for b, w in zip(bins, spread, strict=True)]
        )
    return int(candidates[int(np.argmax(salience))] % 12)


def bass_chord_tone_ratio(
    audio: np.ndarray, sample_rate: int, bar_seconds: float, beat_seconds: float, chords: Sequence[Chord]
) -> float:
    """Share of downbeats on which the bass sounds a tone of the bar's chord."""
    window = min(0.25, 0.9 * beat_seconds)
    hits = 0
    for bar, chord in enumerate(chords):
        pitch_class = pitch_class_at(audio, sample_rate, bar * bar_seconds + 0.02, window)
        hits += pitch_class in chord_pitch_set(chord)
    return hits / len(chords)
