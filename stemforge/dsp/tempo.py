"""Tempo and beat-grid measurement by onset analysis (librosa, imported lazily: a heavy import)."""

from dataclasses import dataclass
from typing import Any

import numpy as np

_HOP = 512
# Phase candidates per beat period: the grid's phase is measured to a fraction of an onset frame.
_PHASE_STEPS = 256
_ONSET_LAG_FRAMES = 1.0
_EDGE_FRAMES = 2


def _refine_period(onset_env: np.ndarray, period: float) -> float:
    """The beat period (in onset frames) near ``period`` that best lines up the autocorrelation
    peaks at every multiple of it: a comb over many beats measures the period far more finely
    than one frame, which is ~1 % of a beat at 200 BPM."""
    centred = onset_env - onset_env.mean()
    correlation = np.correlate(centred, centred, mode="full")[len(centred) - 1 :]
    multiples = np.arange(1, max(2, int((len(correlation) * 0.6) // period)))
    candidates = np.linspace(period - 1.0, period + 1.0, 401)
    lags = candidates[:, None] * multiples[None, :]
    weights = 1.0 / np.sqrt(multiples)  # near multiples are measured over more frames
    scores = (np.interp(lags, np.arange(len(correlation)), correlation, right=0.0) * weights).sum(axis=1)
    return float(candidates[int(np.argmax(scores))])


def _librosa() -> Any:
    try:
        import librosa
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise ModuleNotFoundError(
            'tempo measurement needs librosa: pip install "stemforge[analysis]"', name="librosa"
        ) from exc
    return librosa


def onset_envelope(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset strength per ``_HOP`` samples (``audio``: ``(frames,)`` or ``(frames, channels)``)."""
    envelope: np.ndarray = _librosa().onset.onset_strength(y=_mono(audio), sr=sample_rate, hop_length=_HOP)
    return envelope.astype(np.float64)


def _mono(audio: np.ndarray) -> np.ndarray:
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    return np.ascontiguousarray(mono, dtype=np.float32)


def estimate_bpm(audio: np.ndarray, sample_rate: int, start_bpm: float = 120.0) -> float:
    """Global tempo of ``audio`` (``(frames,)`` or ``(frames, channels)``) in BPM.

    librosa picks the tempo (``start_bpm`` is its prior, which settles octave ambiguity), then
    the period is refined to a fraction of an onset frame."""
    librosa = _librosa()
    onset_env = onset_envelope(audio, sample_rate)
    tempo = librosa.feature.tempo(
        onset_envelope=onset_env, sr=sample_rate, hop_length=_HOP, start_bpm=start_bpm
    )
    coarse = float(np.atleast_1d(tempo)[0])
    if coarse <= 0 or len(onset_env) < 8:
        return coarse
    frames_per_minute = 60.0 * sample_rate / _HOP
    period = _refine_period(onset_env, frames_per_minute / coarse)
    return frames_per_minute / period


@dataclass(frozen=True)
class GridOffset:
    """How far a stem's beats fall from a grid of beats at ``0, beat, 2 beat, ...`` (seconds;
    positive: late).

    ``beat_seconds``: the nearest beat's offset, in ``[-beat/2, beat/2)``; ``downbeat_seconds``:
    the offset of the downbeat (the beat of the bar with the strongest onsets, bar after bar)
    from the nearest bar line, in ``[-bar/2, bar/2)``; ``strength``: how much more onset energy
    falls on the beats than half-way between them, 0.5 for none (noise, a held pad) up to 1 (a
    click track)."""

    beat_seconds: float
    downbeat_seconds: float
    strength: float


def _signed(phase: float, period: float) -> float:
    """``phase`` wrapped into ``[-period/2, period/2)``."""
    return (phase + period / 2) % period - period / 2


def _comb(envelope: np.ndarray, phases: np.ndarray, period: float) -> np.ndarray:
    """Mean onset strength at ``phase + k * period`` for each phase (frames, interpolated).
    The first frames are left out: the envelope has no previous frame to rise from there."""
    beats = np.arange(0, max(1, int((len(envelope) - 1 - phases.max()) // period) + 1))
    positions = phases[:, None] + beats[None, :] * period
    sampled = np.interp(positions, np.arange(len(envelope)), envelope, right=0.0)
    counted = positions >= _EDGE_FRAMES
    result: np.ndarray = (sampled * counted).sum(axis=1) / np.maximum(1, counted.sum(axis=1))
    return result


def grid_offset(audio: np.ndarray, sample_rate: int, bpm: float, beats_per_bar: int = 4) -> GridOffset:
    """Phase of ``audio``'s beats against a grid at ``bpm`` starting at sample 0: the phase that
    puts the most onset strength on the beats, found to a fraction of an onset frame."""
    envelope = onset_envelope(audio, sample_rate)
    frames_per_second = sample_rate / _HOP
    period = 60.0 / bpm * frames_per_second
    if len(envelope) < 2 * period or not envelope.any():
        return GridOffset(0.0, 0.0, 0.5)
    phases = np.linspace(0.0, period, _PHASE_STEPS, endpoint=False)
    scores = _comb(envelope, phases, period)
    best = int(np.argmax(scores))
    # The flux peaks one frame after the attack (it compares a frame with the one before).
    beat_phase = float((phases[best] - _ONSET_LAG_FRAMES) % period)
    between = float(_comb(envelope, np.array([(phases[best] + period / 2) % period]), period)[0])
    on = float(scores[best])
    strength = on / (on + between) if on + between > 0 else 0.5
    # The downbeat: the beat of the bar that is loudest, bar after bar (accents, the kick, chord
    # changes). Onset strength barely tells an accent from a beat (it is a log-spectral flux).
    bar = period * beats_per_bar
    candidates = np.array([phases[best] + k * period for k in range(beats_per_bar)])
    strongest = 0
    if len(envelope) > bar:
        loudness = _librosa().feature.rms(y=_mono(audio), hop_length=_HOP)[0].astype(np.float64)
        strongest = int(np.argmax(_comb(loudness, candidates, bar)))
    downbeat = phases[best] - _ONSET_LAG_FRAMES + strongest * period
    return GridOffset(
        beat_seconds=_signed(beat_phase, period) / frames_per_second,
        downbeat_seconds=_signed(downbeat, bar) / frames_per_second,
        strength=round(strength, 3),
    )
