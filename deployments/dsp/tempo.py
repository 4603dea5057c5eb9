"""Tempo measurement by beat tracking (librosa, imported lazily: it is a heavy import)."""

import numpy as np


def estimate_bpm(audio: np.ndarray, sample_rate: int, start_bpm: float = 120.0) -> float:
    """Global tempo of ``audio`` (``(frames,)`` or ``(frames, channels)``) in BPM."""
    try:
        import librosa
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise ModuleNotFoundError(
            "tempo measurement needs librosa: pip install \"stemforge[analysis]\"", name="librosa"
        ) from exc
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    onset_env = librosa.onset.onset_strength(y=mono.astype(np.float32), sr=sample_rate)
    tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=sample_rate, start_bpm=start_bpm)
    return float(np.atleast_1d(tempo)[0])
