"""Chroma features as MusicGen-melody expects them, without torchaudio.

Mirrors ``MusicgenMelodyFeatureExtractor``: a power spectrogram (n_fft 16384, hop 4096, Hann
window, centred), folded onto 12 pitch classes by librosa's chroma filter bank, then one-hot on
the strongest pitch class of each frame. (The feature extractor needs torchaudio, whose wheels do
not match every torch; ``torch.stft`` gives the same spectrogram.)
"""

import numpy as np
import torch
from transformers.audio_utils import chroma_filter_bank

N_FFT = 16_384
HOP_LENGTH = 4_096


def chroma_one_hot(audio: np.ndarray, sample_rate: int, num_chroma: int = 12) -> torch.Tensor:
    """``audio``: mono samples at ``sample_rate`` (the codec's). Returns ``(frames, num_chroma)``."""
    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if waveform.shape[-1] < N_FFT:
        pad = N_FFT - waveform.shape[-1]
        waveform = torch.nn.functional.pad(waveform, (pad // 2, pad - pad // 2))
    spectrum = torch.stft(
        waveform,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        win_length=N_FFT,
        window=torch.hann_window(N_FFT),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = spectrum.abs() ** 2  # (frequency bins, frames)
    filters = torch.from_numpy(
        chroma_filter_bank(
            sampling_rate=sample_rate, num_frequency_bins=N_FFT, tuning=0, num_chroma=num_chroma
        )
    ).float()
    raw = filters @ power  # (chroma, frames)
    one_hot = torch.zeros((raw.shape[1], num_chroma))
    one_hot.scatter_(1, raw.argmax(dim=0, keepdim=True).T, 1.0)
    return one_hot
