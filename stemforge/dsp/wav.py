"""WAV encoding in memory, so no temporary file is ever written (the seed's step 7)."""

import io

import numpy as np
import soundfile as sf


def encode_wav(audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """Encode float audio of shape ``(frames, channels)`` in [-1, 1] as a WAV file's bytes."""
    if audio.ndim != 2:
        raise ValueError(f"audio must have shape (frames, channels); got {audio.shape}")
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, subtype=subtype, format="WAV")
    return buffer.getvalue()
