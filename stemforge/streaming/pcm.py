"""Raw 16-bit PCM for streamed audio, sample for sample what the stored WAV holds.

``stemforge.dsp.wav.encode_wav`` clips to [-1, 1] and hands the floats to libsndfile, which
python-soundfile opens with ``SFC_SET_CLIPPING`` on. libsndfile's clipping float->short path
(1.2.2, checked empirically against ``encode_wav`` for float32 and float64 input, ties included)
scales to 32 bits and keeps the top half::

    int16 = clip(lrint(x * 2**31), -2**31, 2**31 - 1) >> 16      # lrint: round half to even

i.e. nearly ``floor(x * 32768)``, except that a value within half a 2**-31 step under a
16-bit step rounds up to it first; +1.0 saturates to 32767, -1.0 gives -32768. A listener of
the stream and a reader of the stored stem therefore see identical samples.
"""

import struct

import numpy as np

# Every step is exact in the input's own precision: multiplying or dividing by a power of two
# only moves the exponent, and rint's result is representable. So float32 needs no float64 copy.
_TO_INT32 = 2.0**31
_TOP_HALF = 2.0**16


def to_pcm16(chunk: np.ndarray) -> bytes:
    """Little-endian interleaved int16 bytes of float audio ``(frames, channels)``.

    Out-of-range values saturate (as ``encode_wav``'s clip does). NaN becomes -32768: what x86
    libsndfile writes (lrint's "integer indefinite"); a NaN in a stem is a bug either way.
    """
    if chunk.ndim != 2:
        raise ValueError(f"chunk must have shape (frames, channels); got {chunk.shape}")
    floats = chunk if chunk.dtype in (np.float32, np.float64) else chunk.astype(np.float32)
    with np.errstate(invalid="ignore"):  # NaN compares and rounds quietly; replaced below
        scaled = np.rint(np.clip(floats, -1.0, 1.0) * floats.dtype.type(_TO_INT32))
        samples = np.clip(np.floor(scaled / floats.dtype.type(_TOP_HALF)), -32768, 32767)
    samples[np.isnan(samples)] = -32768
    return samples.astype("<i2").tobytes()


# A pipe's length is unknown when the header is written: ffmpeg writes 0xFFFFFFFF for both
# sizes then, and browsers (<audio>) and ffmpeg/ffplay play such a file as its bytes arrive,
# reading data until the stream ends (libsndfile and Python's wave read it too: the tests).
_UNKNOWN_SIZE = 0xFFFFFFFF
_PCM_FORMAT = 1
_BITS = 16


def wav_stream_header(sample_rate: int, channels: int) -> bytes:
    """The 44-byte RIFF/WAVE header of 16-bit PCM of unknown length, for :func:`to_pcm16` data."""
    if sample_rate <= 0 or channels <= 0:
        raise ValueError(f"sample_rate and channels must be positive; got {sample_rate}, {channels}")
    block_align = channels * _BITS // 8
    return b"".join(
        [
            b"RIFF",
            struct.pack("<I", _UNKNOWN_SIZE),
            b"WAVE",
            b"fmt ",
            struct.pack(
                "<IHHIIHH",
                16,
                _PCM_FORMAT,
                channels,
                sample_rate,
                sample_rate * block_align,
                block_align,
                _BITS,
            ),
            b"data",
            struct.pack("<I", _UNKNOWN_SIZE),
        ]
    )


def pcm_of_wav(data: bytes) -> bytes:
    """A stored WAV's samples as the stream sends them (interleaved s16le): for the default
    PCM_16 stems, exactly its data chunk."""
    import io

    import soundfile as sf

    samples, _ = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()
