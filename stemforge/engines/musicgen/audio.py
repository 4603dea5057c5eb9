"""From audio tokens to the engines' WAV contract: 44.1 kHz stereo float32, loudness normalized.

Tokens of all windows are decoded together, so a long stem has no seam in the codec either.
Very long stems are decoded in overlapping chunks (the codec's activations take about 250 MB per
10 s of audio) and cross-faded over the overlap.
"""

from typing import Any

import numpy as np
import soxr
import torch

from stemforge.dsp.loudness import normalize_loudness
from stemforge.engines.alignment import fit_length
from stemforge.music.spec import SAMPLE_RATE

DECODE_CHUNK_FRAMES = 1_500  # 30 s at 50 Hz
DECODE_OVERLAP_FRAMES = 50


def decode_codes(audio_encoder: Any, codes: torch.Tensor, audio_channels: int) -> np.ndarray:
    """``codes``: ``(rows, codebooks, frames)``; returns ``(rows, channels, samples)`` at the codec rate.
    Stereo checkpoints interleave left and right codebooks; each half is decoded separately."""
    if audio_channels == 2:
        left = decode_codes(audio_encoder, codes[:, 0::2], 1)
        right = decode_codes(audio_encoder, codes[:, 1::2], 1)
        return np.concatenate([left, right], axis=1)
    frames = codes.shape[-1]
    if frames <= DECODE_CHUNK_FRAMES:
        return _decode(audio_encoder, codes)
    hop = audio_encoder.config.hop_length
    step = DECODE_CHUNK_FRAMES - DECODE_OVERLAP_FRAMES
    fade = DECODE_OVERLAP_FRAMES * hop
    out: np.ndarray | None = None
    for start in range(0, frames - DECODE_OVERLAP_FRAMES, step):
        chunk = _decode(audio_encoder, codes[..., start : start + DECODE_CHUNK_FRAMES])
        if out is None:
            out = chunk
            continue
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        tail = out[..., -fade:] * (1 - ramp) + chunk[..., :fade] * ramp
        out = np.concatenate([out[..., :-fade], tail, chunk[..., fade:]], axis=-1)
    if out is None:  # pragma: no cover - frames > DECODE_CHUNK_FRAMES gives at least one chunk
        raise RuntimeError("no audio decoded")
    return out


def _decode(audio_encoder: Any, codes: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        values = audio_encoder.decode(codes[None], audio_scales=[None] * codes.shape[0]).audio_values
    result: np.ndarray = values.float().cpu().numpy()
    return result


def to_stem_audio(audio: np.ndarray, sample_rate: int, num_frames: int) -> np.ndarray:
    """``(channels, samples)`` at ``sample_rate`` to ``(num_frames, 2)`` at 44.1 kHz: soxr's
    very-high-quality resampler, mono duplicated to both channels, cut or padded to length."""
    resampled = soxr.resample(
        np.ascontiguousarray(audio.T, dtype=np.float32), sample_rate, SAMPLE_RATE, "VHQ"
    )
    if resampled.ndim == 1:
        resampled = resampled[:, None]
    if resampled.shape[1] == 1:
        resampled = np.repeat(resampled, 2, axis=1)
    return fit_length(resampled[:, :2], num_frames)


def finish(audio: np.ndarray, target_lufs: float, peak_ceiling_dbfs: float) -> np.ndarray:
    return normalize_loudness(audio, SAMPLE_RATE, target_lufs, peak_ceiling_dbfs)


def encode_audio(audio_encoder: Any, mono: np.ndarray, audio_channels: int) -> torch.Tensor:
    """Mono audio at the codec rate to tokens ``(codebooks, frames)``: the audio prompt a
    continuation carries on. Stereo checkpoints interleave left and right codebooks; a mono
    reference gives both sides the same tokens."""
    values = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None, None]
    parameter = next(audio_encoder.parameters())
    with torch.inference_mode():
        encoded = audio_encoder.encode(values.to(device=parameter.device, dtype=parameter.dtype))
    codes: torch.Tensor = encoded.audio_codes[0, 0]  # (codebooks, frames) of the one chunk
    if audio_channels == 2:
        codes = torch.stack([codes, codes], dim=1).reshape(-1, codes.shape[-1])
    return codes
