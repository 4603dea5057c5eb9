"""Decoding reference audio with the real libsndfile: files written by soundfile in each format."""

import io

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from stemforge.errors import InvalidRequest
from stemforge.reference.decode import (
    MAX_CHANNELS,
    DecodedAudio,
    decode_audio,
    probe_audio,
    to_stereo_44k,
)

FIELD = "parameters.reference_audio"
MP3 = pytest.mark.skipif(
    "MP3" not in sf.available_formats(),
    reason=f"libsndfile {sf.__libsndfile_version__} was built without MP3 (needs >= 1.1 with mpg123/LAME)",
)
# (soundfile format, subtype, the format we report)
LOSSLESS = [("WAV", "PCM_16", "WAV"), ("FLAC", "PCM_16", "FLAC"), ("WAVEX", "PCM_16", "WAV")]
LOSSY = [("OGG", "VORBIS", "OGG"), pytest.param("MP3", "MPEG_LAYER_III", "MP3", marks=MP3)]


def tone(seconds: float = 1.0, rate: int = 44_100, channels: int = 1) -> np.ndarray:
    """float32 (frames, channels): a chord, different on each channel, at half scale."""
    t = np.arange(round(seconds * rate)) / rate
    columns = [
        0.25 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.2 * np.sin(2 * np.pi * (660 + 55 * c) * t)
        for c in range(channels)
    ]
    return np.stack(columns, axis=1).astype(np.float32)


def pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(audio * 32767).astype(np.int16)


def encode(audio: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def refusal(data: bytes, max_seconds: float = 60.0) -> str:
    with pytest.raises(InvalidRequest) as caught:
        decode_audio(data, FIELD, max_seconds)
    assert caught.value.field == FIELD
    assert caught.value.status_code == 422
    return caught.value.problems[0][1]


def best_correlation(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 4096) -> float:
    """The highest normalised correlation of two mono signals over lags up to ``max_lag`` (codec
    delay and padding)."""
    n = min(len(reference), len(decoded)) - max_lag
    ref = reference[:n]
    full = signal.correlate(decoded[: n + max_lag], ref, mode="valid", method="fft")
    energy = np.sqrt(np.convolve(decoded[: n + max_lag] ** 2, np.ones(n), mode="valid") * np.sum(ref**2))
    return float(np.max(full / energy))


@pytest.mark.parametrize(("fmt", "subtype", "reported"), LOSSLESS)
@pytest.mark.parametrize("channels", [1, 2])
def test_lossless_decodes_to_the_samples_written(
    fmt: str, subtype: str, reported: str, channels: int
) -> None:
    written = pcm16(tone(channels=channels))
    decoded = decode_audio(encode(written, 48_000, fmt, subtype), FIELD, 60)
    assert decoded.format == reported
    assert decoded.sample_rate == 48_000
    assert decoded.audio.dtype == np.float32
    assert decoded.audio.shape == written.shape
    np.testing.assert_array_equal(decoded.audio, written.astype(np.float32) / 32768)
    assert decoded.duration_seconds == pytest.approx(len(written) / 48_000)


@pytest.mark.parametrize(("fmt", "subtype", "reported"), LOSSY)
@pytest.mark.parametrize("channels", [1, 2])
def test_lossy_decodes_to_what_was_written(fmt: str, subtype: str, reported: str, channels: int) -> None:
    written = tone(seconds=2.0, channels=channels)
    decoded = decode_audio(encode(written, 44_100, fmt, subtype), FIELD, 60)
    assert decoded.format == reported
    assert decoded.sample_rate == 44_100
    assert decoded.audio.dtype == np.float32
    assert decoded.audio.shape[1] == channels
    assert abs(len(decoded.audio) - len(written)) < 4096  # encoder delay and frame padding at most
    for c in range(channels):
        assert best_correlation(written[:, c], decoded.audio[:, c]) > 0.97


@pytest.mark.parametrize(("fmt", "subtype", "reported"), [*LOSSLESS, *LOSSY])
def test_probe_reads_format_rate_and_length_from_the_header(fmt: str, subtype: str, reported: str) -> None:
    data = encode(tone(seconds=1.5, rate=32_000), 32_000, fmt, subtype)
    found, rate, seconds = probe_audio(data, FIELD, 60)
    assert (found, rate) == (reported, 32_000)
    assert seconds == pytest.approx(1.5, abs=0.06)


@pytest.mark.parametrize(("fmt", "subtype", "reported"), [*LOSSLESS, *LOSSY])
def test_too_long_is_refused_naming_the_limit(fmt: str, subtype: str, reported: str) -> None:
    data = encode(tone(seconds=2.0), 44_100, fmt, subtype)
    for refuse in (probe_audio, decode_audio):
        with pytest.raises(InvalidRequest) as caught:
            refuse(data, FIELD, 1.5)
        message = caught.value.problems[0][1]
        assert message.startswith("longer than 1.5 s: got 2"), message
        assert caught.value.field == FIELD


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<!doctype html><html><body>Not found</body></html>" * 20, "not recognised"),
        (np.random.default_rng(1).bytes(50_000), "not recognised"),
        (b"", "empty"),
        (b"RIFF\x24\x00\x00\x00WAVE", ""),  # a WAV header and nothing else
    ],
    ids=["html", "random-bytes", "zero-bytes", "bare-riff-header"],
)
def test_junk_is_not_audio(data: bytes, reason: str) -> None:
    message = refusal(data)
    assert message.startswith("not audio (WAV, FLAC, OGG or MP3): "), message
    assert reason in message.lower()


def test_other_audio_formats_are_refused_by_name() -> None:
    message = refusal(encode(tone(), 44_100, "AIFF", "PCM_16"))
    assert message.startswith("not audio (WAV, FLAC, OGG or MP3): it is AIFF"), message


def test_zero_length_audio_is_refused() -> None:
    data = encode(np.zeros((0, 2), np.int16), 44_100, "WAV", "PCM_16")
    assert refusal(data) == "is empty audio (no samples)"
    with pytest.raises(InvalidRequest, match="empty audio"):
        probe_audio(data, FIELD, 60)


def test_non_finite_samples_are_refused() -> None:
    audio = tone()
    audio[100] = np.nan
    assert "non-finite" in refusal(encode(audio, 44_100, "WAV", "FLOAT"))


def test_too_many_channels_are_refused() -> None:
    audio = np.zeros((1000, MAX_CHANNELS + 2), np.int16)
    assert (
        refusal(encode(audio, 44_100, "WAV", "PCM_16"))
        == f"has {MAX_CHANNELS + 2} channels: at most 8 are accepted"
    )


def _dominant_hz(mono: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.fft.rfftfreq(len(mono), 1 / rate)[np.argmax(spectrum)])


def test_to_stereo_44k_from_48k_mono() -> None:
    t = np.arange(48_000) / 48_000
    mono = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None]
    stereo = to_stereo_44k(DecodedAudio(audio=mono, sample_rate=48_000, format="WAV"))
    assert stereo.dtype == np.float32
    assert stereo.shape[1] == 2
    assert abs(len(stereo) - 44_100) <= 1
    np.testing.assert_array_equal(stereo[:, 0], stereo[:, 1])
    assert _dominant_hz(stereo[:, 0], 44_100) == pytest.approx(440, abs=2)
    # VHQ: the tone keeps its level (no droop), away from the edges.
    assert np.max(np.abs(stereo[2000:-2000, 0])) == pytest.approx(0.5, abs=0.005)


def test_to_stereo_44k_from_22k_stereo_keeps_both_channels() -> None:
    t = np.arange(22_050) / 22_050
    audio = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 500 * t)], axis=1).astype(np.float32)
    stereo = to_stereo_44k(DecodedAudio(audio=0.5 * audio, sample_rate=22_050, format="OGG"))
    assert stereo.dtype == np.float32
    assert stereo.shape == (44_100, 2)
    assert _dominant_hz(stereo[:, 0], 44_100) == pytest.approx(300, abs=2)
    assert _dominant_hz(stereo[:, 1], 44_100) == pytest.approx(500, abs=2)


def test_to_stereo_44k_leaves_44k_stereo_alone_and_downmixes_more_channels() -> None:
    audio = tone(channels=2)
    np.testing.assert_array_equal(to_stereo_44k(DecodedAudio(audio, 44_100, "WAV")), audio)
    surround = tone(channels=6)
    stereo = to_stereo_44k(DecodedAudio(surround, 44_100, "WAV"))
    assert stereo.shape == (len(surround), 2)
    np.testing.assert_allclose(stereo[:, 0], surround.mean(axis=1), atol=1e-6)
    np.testing.assert_array_equal(stereo[:, 0], stereo[:, 1])


def test_decoded_multichannel_file_downmixes_end_to_end() -> None:
    data = encode(pcm16(tone(seconds=0.5, rate=48_000, channels=6)), 48_000, "WAVEX", "PCM_16")
    decoded = decode_audio(data, FIELD, 60)
    assert decoded.audio.shape == (24_000, 6)
    stereo = to_stereo_44k(decoded)
    assert stereo.shape[1] == 2 and abs(len(stereo) - 22_050) <= 1
