"""to_pcm16 against the stored WAV's samples, and the stream header against WAV readers."""

import io
import platform
import struct
import wave

import numpy as np
import pytest
import soundfile as sf

from stemforge.dsp.wav import encode_wav
from stemforge.streaming.pcm import to_pcm16, wav_stream_header


def _data_chunk(wav: bytes) -> bytes:
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    at = 12
    while at < len(wav):
        size = int.from_bytes(wav[at + 4 : at + 8], "little")
        if wav[at : at + 4] == b"data":
            return wav[at + 8 : at + 8 + size]
        at += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def _edge_audio(dtype: type) -> np.ndarray:
    rng = np.random.default_rng(7)
    random = rng.uniform(-1.25, 1.25, 40_000)
    tiny = rng.choice([-1, 1], 4_000) * 10.0 ** rng.uniform(-40, -3, 4_000)
    # Ties and near-ties on the 2**-31 grid next to 16-bit steps: where the rounding mode shows.
    steps = np.arange(-300, 300) * 65536.0
    ties = np.concatenate([(steps + offset) * 2.0**-31 for offset in (-1.5, -0.5, -0.25, 0.25, 0.5, 1.5)])
    exact = np.arange(-32768, 32768, 97) / 32768.0
    edges = [1.0, -1.0, 1 - 2**-24, -1 + 2**-24, 1 - 2**-31, 1 + 1e-7, -1 - 1e-7, 2.0, -3.0, np.inf, -np.inf]
    edges += [0.0, -0.0, 1e-9, -1e-9, 0.5 / 32767, -0.5 / 32767, 0.5 / 32768, -0.5 / 32768, 2**-32, -(2**-32)]
    values = np.concatenate([random, tiny, ties, exact, edges])
    values = values[: len(values) // 2 * 2]
    return values.astype(dtype).reshape(-1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pcm_is_byte_for_byte_the_stored_wav_data(dtype: type) -> None:
    audio = _edge_audio(dtype)
    assert to_pcm16(audio) == _data_chunk(encode_wav(audio, 44100))


def test_pcm_is_the_stored_wav_data_for_chunks_and_other_layouts() -> None:
    audio = _edge_audio(np.float32)
    stored = _data_chunk(encode_wav(audio, 44100))
    assert b"".join(to_pcm16(audio[i : i + 999]) for i in range(0, len(audio), 999)) == stored
    assert to_pcm16(np.asfortranarray(audio)) == stored
    mono = audio[:, :1]
    assert to_pcm16(mono) == _data_chunk(encode_wav(mono, 44100))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="lrint(NaN) is x86's")
def test_nan_is_what_x86_libsndfile_writes() -> None:
    audio = np.array([[np.nan, 0.5], [-np.nan, np.nan]], dtype=np.float32)
    assert to_pcm16(audio) == _data_chunk(encode_wav(audio, 44100))


def test_pcm_rule_examples_and_layout() -> None:
    audio = np.array([[1.0, -1.0], [0.5, -0.5], [1e-9, -1e-9], [3.0, -3.0]], dtype=np.float32)
    samples = np.frombuffer(to_pcm16(audio), dtype="<i2").reshape(-1, 2)
    # Interleaved frame by frame; +1 saturates to 32767; nearly floor(x * 32768).
    assert samples.tolist() == [[32767, -32768], [16384, -16384], [0, -1], [32767, -32768]]
    with pytest.raises(ValueError):
        to_pcm16(np.zeros(4, dtype=np.float32))


def test_header_fields() -> None:
    header = wav_stream_header(44100, 2)
    assert len(header) == 44
    riff, riff_size, wave_id, fmt, fmt_size = struct.unpack("<4sI4s4sI", header[:20])
    audio_format, channels, rate, byte_rate, block_align, bits = struct.unpack("<HHIIHH", header[20:36])
    data, data_size = struct.unpack("<4sI", header[36:])
    assert (riff, wave_id, fmt, data) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert riff_size == data_size == 0xFFFFFFFF
    assert (fmt_size, audio_format, channels, rate, bits) == (16, 1, 2, 44100, 16)
    assert (byte_rate, block_align) == (44100 * 4, 4)
    with pytest.raises(ValueError):
        wav_stream_header(0, 2)


def test_header_and_pcm_read_back_as_the_samples() -> None:
    audio = _edge_audio(np.float32)[:5000]
    pcm = to_pcm16(audio)
    expected = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    stream = wav_stream_header(44100, 2) + pcm

    # libsndfile takes the unknown sizes as "to the end of the file".
    read, rate = sf.read(io.BytesIO(stream), dtype="int16")
    assert rate == 44100
    np.testing.assert_array_equal(read, expected)

    with wave.open(io.BytesIO(stream)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (2, 2, 44100)
        frames = reader.readframes(10**9)  # reads to the end: nframes is the header's huge guess
    assert frames == pcm
