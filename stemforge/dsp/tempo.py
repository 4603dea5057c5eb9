"""Tempo measurement by beat tracking (librosa, imported lazily: it is a heavy import)."""

import numpy as np

_HOP = 512


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


def estimate_bpm(audio: np.ndarray, sample_rate: int, start_bpm: float = 120.0) -> float:
    """Global tempo of ``audio`` (``(frames,)`` or ``(frames, channels)``) in BPM.

    librosa picks the tempo (``start_bpm`` is its prior, which settles octave ambiguity), then
    the period is refined to a fraction of an onset frame."""
    try:
        import librosa
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise ModuleNotFoundError(
            'tempo measurement needs librosa: pip install "stemforge[analysis]"', name="librosa"
        ) from exc
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    onset_env = librosa.onset.onset_strength(y=mono.astype(np.float32), sr=sample_rate, hop_length=_HOP)
    tempo = librosa.feature.tempo(
        onset_envelope=onset_env, sr=sample_rate, hop_length=_HOP, start_bpm=start_bpm
    )
    coarse = float(np.atleast_1d(tempo)[0])
    if coarse <= 0 or len(onset_env) < 8:
        return coarse
    frames_per_minute = 60.0 * sample_rate / _HOP
    period = _refine_period(onset_env.astype(np.float64), frames_per_minute / coarse)
    return frames_per_minute / period
