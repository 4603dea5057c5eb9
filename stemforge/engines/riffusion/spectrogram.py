"""The Riffusion spectrogram-image codec: audio <-> the mel-spectrogram images the model paints.
Pure numpy / scipy / librosa (no torch).

It reproduces the parameters and the image mapping of riffusion-hobby (``spectrogram_params.py``,
``spectrogram_converter.py``, ``spectrogram_image_converter.py``, ``util/image_util.py``):

- audio: 44.1 kHz mono; STFT with a 100 ms (4410-sample) periodic Hann window zero-padded to
  400 ms (n_fft 17640), 10 ms (441-sample) hop, centred frames with reflect padding, magnitude
  (``|X|``, power 1, not the power spectrogram);
- 512 mel bins from 0 to 10 kHz, HTK mel scale, no filter normalisation (torchaudio ``MelScale``;
  librosa's ``filters.mel(htk=True, norm=None)`` builds the same triangles);
- image: ``255 - 255 * (S / S.max()) ** 0.25`` truncated to uint8, where ``S.max()`` is the
  maximum of *that* spectrogram (so the loudest bin is black, silence white), flipped so that
  row 0 is the top frequency (10 kHz) and the last row is 0 Hz. One column per 10 ms hop: a
  512 x 512 image is 5.12 s;
- the original writes the gray image as RGB with three equal channels and, to decode, reads only
  the red channel; it decodes with a *fixed* maximum (``max_value=30e6``, for int16-scaled
  samples: its float waveform is the raw int16 sample values), because the per-image maximum it
  stores in EXIF tag 11080 is lost in generated images. We keep that fixed maximum, rescaled to
  float audio in [-1, 1] (``30e6 / 32768``), and store no EXIF: the codec takes and returns
  arrays;
- inverse: mel -> linear magnitude, then Griffin-Lim, 32 iterations, momentum 0.99, random
  initial phase (here from a fixed seed, so one image always gives the same audio).

Mel -> linear: ``librosa.feature.inverse.mel_to_stft`` cannot be used at this size: its NNLS
sizes the L-BFGS memory to the 8821 linear bins and asks for a 155 GiB array (measured), and its
pseudo-inverse alone takes ~20 s. We use the minimum-norm least-squares solution clipped at zero,
``relu(A^+ M)``, which is what torchaudio's ``InverseMelScale`` computes since 2.1 (``lstsq`` with
the "gels" driver, then ``relu``; the original still passes the SGD arguments that 2.1 removed,
which is why it breaks there).
The mel filters of this bank are linearly independent, so ``A^+ = A^T (A A^T)^-1`` and only a
512 x 512 Cholesky factorisation is needed (~0.5 s for a tile). On a 5.12 s chord it came within
0.2 points of librosa's NNLS in distance to the true linear magnitudes (3.2 % vs 3.0 %), at a
fraction of the cost. Phase reconstruction is ``librosa.griffinlim``.

Columns: the original's centred STFT gives ``1 + samples // hop`` columns (513 for exactly
5.12 s); we keep ``ceil(samples / hop)`` (512), so that W columns are exactly W * hop samples both
ways, and the decoder repeats the last column for the frame it needs past the end.

The original's output post-processing (peak normalisation to full scale, then pydub compression
to -12 dBFS) is not part of the codec: loudness is the mix stage's job.
"""

import functools
import math
from dataclasses import dataclass
from typing import Literal

import librosa
import numpy as np
import scipy.linalg

#: Stable Diffusion's VAE downsamples by 8: image widths (and heights) must be multiples of 8.
VAE_MULTIPLE = 8

#: numpy pad modes librosa's STFT accepts.
PadMode = Literal["constant", "edge", "linear_ramp", "reflect", "symmetric", "empty"]

#: int16 full scale: the original computes its spectrograms on raw int16 sample values.
_INT16_SCALE = 32768.0


@dataclass(frozen=True)
class SpectrogramParams:
    """The conversion parameters. Field names and defaults follow riffusion-hobby's
    ``SpectrogramParams``; the derived values are properties."""

    sample_rate: int = 44100
    stereo: bool = False  # the published model is mono
    step_size_ms: int = 10
    window_duration_ms: int = 100
    padded_duration_ms: int = 400
    num_frequencies: int = 512  # mel bins = image height
    min_frequency: int = 0
    max_frequency: int = 10000
    mel_scale_norm: Literal["slaney"] | None = None
    mel_scale_type: str = "htk"
    num_griffin_lim_iters: int = 32
    griffin_lim_momentum: float = 0.99  # torchaudio GriffinLim in the original; librosa's default
    power_for_image: float = 0.25
    stft_power: float = 1.0  # magnitude |X| (torchaudio Spectrogram(power=None) then abs)
    window: str = "hann"  # periodic Hann (torch.hann_window / scipy get_window(fftbins=True))
    center: bool = True
    pad_mode: PadMode = "reflect"
    max_value_int16: float = 30e6  # fixed decode maximum of the original, int16-scaled samples
    tile_columns: int = 512  # the model's native image width

    @property
    def n_fft(self) -> int:
        return self.sample_rate * self.padded_duration_ms // 1000

    @property
    def win_length(self) -> int:
        return self.sample_rate * self.window_duration_ms // 1000

    @property
    def hop_length(self) -> int:
        return self.sample_rate * self.step_size_ms // 1000

    @property
    def n_stft(self) -> int:
        """Linear-frequency bins of one STFT frame."""
        return self.n_fft // 2 + 1

    @property
    def samples_per_column(self) -> int:
        return self.hop_length

    @property
    def seconds_per_column(self) -> float:
        return self.step_size_ms / 1000.0

    @property
    def tile_samples(self) -> int:
        return self.tile_columns * self.samples_per_column

    @property
    def tile_seconds(self) -> float:
        """Seconds in one native-width image (5.12 s)."""
        return self.tile_columns * self.step_size_ms / 1000.0

    @property
    def max_value(self) -> float:
        """The original's decode maximum for float audio in [-1, 1]."""
        return self.max_value_int16 / _INT16_SCALE


RIFFUSION = SpectrogramParams()


def columns_for_seconds(
    seconds: float, params: SpectrogramParams = RIFFUSION, multiple: int = VAE_MULTIPLE
) -> int:
    """Pixel columns that cover ``seconds`` of audio, rounded up to a multiple of ``multiple``
    (8 by default: Stable Diffusion's VAE needs image sides that are multiples of 8). Trim the
    decoded audio to the duration wanted."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    # round() first so 5.12 s is 512 columns despite float error in 5.12 * 1000 / 10.
    columns = math.ceil(round(seconds * 1000.0 / params.step_size_ms, 6))
    return -(-columns // multiple) * multiple


def seconds_for_columns(columns: int, params: SpectrogramParams = RIFFUSION) -> float:
    return columns * params.step_size_ms / 1000.0


@functools.lru_cache(maxsize=4)
def mel_basis(params: SpectrogramParams = RIFFUSION) -> np.ndarray:
    """The (num_frequencies, n_stft) float32 mel filter bank (triangles on the linear bins)."""
    if params.mel_scale_type not in ("htk", "slaney"):
        raise ValueError(f"unknown mel scale {params.mel_scale_type!r}")
    basis: np.ndarray = librosa.filters.mel(
        sr=params.sample_rate,
        n_fft=params.n_fft,
        n_mels=params.num_frequencies,
        fmin=params.min_frequency,
        fmax=params.max_frequency,
        htk=params.mel_scale_type == "htk",
        norm=params.mel_scale_norm,
        dtype=np.float32,
    )
    basis.setflags(write=False)
    return basis


@functools.lru_cache(maxsize=4)
def _gram_cholesky(params: SpectrogramParams) -> tuple[np.ndarray, bool]:
    basis = mel_basis(params).astype(np.float64)
    factor, lower = scipy.linalg.cho_factor(basis @ basis.T, lower=True)
    return factor, lower


def mel_spectrogram(audio: np.ndarray, params: SpectrogramParams = RIFFUSION) -> np.ndarray:
    """Mel magnitudes (num_frequencies, columns) float32, row 0 = lowest frequency, one column per
    hop: ``ceil(samples / hop)`` columns (the centred frame on the sample just past the end, which
    exists when the length is a whole number of hops, is dropped: 5.12 s gives 512 columns)."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (samples,), got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("audio is empty")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")
    stft = librosa.stft(
        audio.astype(np.float32, copy=False),
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        window=params.window,
        center=params.center,
        pad_mode=params.pad_mode,
    )
    columns = -(-audio.size // params.hop_length)
    magnitude = np.abs(stft[:, :columns]) ** params.stft_power
    mel: np.ndarray = (mel_basis(params) @ magnitude).astype(np.float32, copy=False)
    return mel


def spectrogram_to_image(mel: np.ndarray, params: SpectrogramParams = RIFFUSION) -> np.ndarray:
    """The model's mapping: ``255 - 255 * (S / S.max()) ** power`` truncated to uint8 and flipped
    (row 0 = top frequency). An all-zero spectrogram (silence) is an all-white image."""
    mel = np.asarray(mel, dtype=np.float64)
    peak = float(mel.max()) if mel.size else 0.0
    if peak <= 0.0:
        return np.full(mel.shape, 255, dtype=np.uint8)
    data = 255.0 - 255.0 * np.power(np.clip(mel / peak, 0.0, 1.0), params.power_for_image)
    return np.ascontiguousarray(data.astype(np.uint8)[::-1])  # astype truncates, as the original


def image_to_pixels(image: np.ndarray) -> np.ndarray:
    """Any accepted image form as (H, W) uint8 pixels, row 0 = top frequency.

    - (H, W) or (H, W, 1) uint8: the gray image;
    - (H, W, 3) uint8: RGB; like the original, only the red channel is read;
    - float (H, W), (H, W, 1) or (H, W, 3) in [0, 1] (a ``StableDiffusionPipeline`` image with
      ``output_type="np"`` is one item of its (batch, H, W, 3) float32 array): quantised as
      diffusers' ``numpy_to_pil`` does (``round(x * 255)``), which is what the original decoded.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (1, 3):
        image = image[:, :, 0]
    if image.ndim != 2:
        raise ValueError(
            f"image must be (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}"
            + (": decode a batch image by image" if image.ndim == 4 else "")
        )
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got {image.dtype}")
    if not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or infinite values")
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def image_to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] with three equal channels, as the original saves its gray
    image: the form diffusers takes as an ``image`` (e.g. an img2img init image)."""
    pixels = image_to_pixels(image)
    return np.repeat((pixels.astype(np.float32) / 255.0)[:, :, None], 3, axis=2)


def image_to_spectrogram(
    image: np.ndarray, params: SpectrogramParams = RIFFUSION, max_value: float | None = None
) -> np.ndarray:
    """Mel magnitudes (num_frequencies, W) float32 (row 0 = lowest frequency) from an image:
    ``((255 - p) / 255) ** (1 / power) * max_value``; ``max_value`` defaults to the original's
    fixed 30e6 rescaled to float audio (``params.max_value``)."""
    pixels = image_to_pixels(image)
    if pixels.shape[0] != params.num_frequencies:
        raise ValueError(f"image height must be {params.num_frequencies} (mel bins), got {pixels.shape[0]}")
    scale = params.max_value if max_value is None else float(max_value)
    data = (255.0 - pixels[::-1].astype(np.float32)) / 255.0
    mel: np.ndarray = (np.power(data, 1.0 / params.power_for_image) * scale).astype(np.float32)
    return mel


def mel_to_linear(mel: np.ndarray, params: SpectrogramParams = RIFFUSION) -> np.ndarray:
    """Linear magnitudes (n_stft, W) float32: the minimum-norm least-squares solution of
    ``mel_basis @ X = mel`` clipped at 0 (torchaudio >= 2.1 ``InverseMelScale``)."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim != 2 or mel.shape[0] != params.num_frequencies:
        raise ValueError(f"mel must be ({params.num_frequencies}, frames), got shape {mel.shape}")
    coefficients = scipy.linalg.cho_solve(_gram_cholesky(params), mel)
    linear = mel_basis(params).T @ coefficients.astype(np.float32)
    np.clip(linear, 0.0, None, out=linear)
    return linear


def spectrogram_to_audio(
    mel: np.ndarray,
    params: SpectrogramParams = RIFFUSION,
    *,
    n_iter: int | None = None,
    random_state: int = 0,
    length: int | None = None,
) -> np.ndarray:
    """Audio (samples,) float32 from mel magnitudes: mel -> linear, then ``librosa.griffinlim``
    (``params.num_griffin_lim_iters`` iterations unless ``n_iter``, momentum
    ``params.griffin_lim_momentum``, random initial phase from ``random_state``). ``length``
    defaults to ``columns * hop`` samples (a 512-column image gives exactly 5.12 s)."""
    linear = mel_to_linear(mel, params)
    if length is None:
        length = linear.shape[1] * params.hop_length
    if not np.any(linear):  # silence: Griffin-Lim would only spend time to return zeros
        return np.zeros(length, dtype=np.float32)
    magnitude = linear if params.stft_power == 1.0 else np.power(linear, 1.0 / params.stft_power)
    # Centred STFT frames of ``length`` samples: 1 + length // hop. The encoder drops the frame
    # centred just past the end (W columns for W * hop samples); repeat the last column for it.
    frames = 1 + length // params.hop_length if params.center else linear.shape[1]
    if frames > magnitude.shape[1]:
        magnitude = np.pad(magnitude, ((0, 0), (0, frames - magnitude.shape[1])), mode="edge")
    magnitude = magnitude[:, :frames]
    audio = librosa.griffinlim(
        magnitude,
        n_iter=params.num_griffin_lim_iters if n_iter is None else n_iter,
        hop_length=params.hop_length,
        win_length=params.win_length,
        n_fft=params.n_fft,
        window=params.window,
        center=params.center,
        pad_mode=params.pad_mode,
        momentum=params.griffin_lim_momentum,
        init="random",
        random_state=random_state,
        length=length,
    )
    result: np.ndarray = audio.astype(np.float32, copy=False)
    return result


def audio_to_image(audio: np.ndarray, params: SpectrogramParams = RIFFUSION) -> np.ndarray:
    """The model's training mapping: mono float audio at ``params.sample_rate`` to a
    (num_frequencies, ceil(samples / hop)) uint8 image, row 0 = top frequency."""
    return spectrogram_to_image(mel_spectrogram(audio, params), params)


def image_to_audio(
    image: np.ndarray,
    params: SpectrogramParams = RIFFUSION,
    *,
    max_value: float | None = None,
    n_iter: int | None = None,
    random_state: int = 0,
    length: int | None = None,
    peak: float | None = None,
) -> np.ndarray:
    """Audio (W * hop samples,) float32 at ``params.sample_rate`` from one image in any form
    ``image_to_pixels`` accepts. Deterministic: the same image and ``random_state`` give the same
    audio. The level follows the original's fixed ``max_value`` (a black pixel is a mel magnitude
    of ``params.max_value``, and a mostly dark image can then peak above 1.0); pass the encoded
    spectrogram's maximum to get a round trip's level back, or ``peak`` to scale the result so
    that its largest sample is ``peak`` (the original normalises to full scale; silence stays
    silent)."""
    mel = image_to_spectrogram(image, params, max_value)
    audio = spectrogram_to_audio(mel, params, n_iter=n_iter, random_state=random_state, length=length)
    if peak is not None:
        largest = float(np.max(np.abs(audio))) if audio.size else 0.0
        if largest > 0.0:
            audio *= np.float32(peak / largest)
    return audio
