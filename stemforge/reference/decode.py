"""Decoding a user's reference audio: WAV, FLAC, OGG (Vorbis, Opus) and MP3, all through libsndfile.

libsndfile (>= 1.1, through ``soundfile``) reads MP3 itself (mpg123), so one decoder serves every
format and nothing shells out to ffmpeg. ``probe_audio`` reads only the header, so a file that is
too long is refused before any of it is decoded. Decoded audio is bounded by ``max_seconds`` at
most ``MAX_SAMPLE_RATE`` and ``MAX_CHANNELS`` (float32), whatever the header claims: decoding
stops at the limit.
"""

import io
import math
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from stemforge.errors import InvalidRequest

ACCEPTED = "WAV, FLAC, OGG or MP3"
# libsndfile's major formats, by the name we report. WAVE_FORMAT_EXTENSIBLE (24-bit and
# multichannel files) and RF64 (WAV over 4 GiB) are WAV files to a user.
_FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "RF64": "WAV", "FLAC": "FLAC", "OGG": "OGG", "MP3": "MP3"}
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8  # up to 7.1
TARGET_RATE = 44_100
_BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class DecodedAudio:
    audio: np.ndarray  # float32 (frames, channels) at sample_rate, as decoded
    sample_rate: int
    format: str  # "WAV", "FLAC", "OGG", "MP3"

    @property
    def duration_seconds(self) -> float:
        return len(self.audio) / self.sample_rate


def _seconds(value: float) -> str:
    """Seconds for a message, rounded up to 0.01 s: 300.004 s reads "300.01", never "300"."""
    return f"{math.ceil(value * 100) / 100:g}"


def _libsndfile_reason(exc: Exception) -> str:
    reason = str(getattr(exc, "error_string", None) or exc).strip().rstrip(".")
    # What libsndfile says of bytes no format claims when they come from memory, not a file.
    if "not a regular file" in reason or "does not exist" in reason:
        return "format not recognised"
    return reason


def probe_audio(data: bytes, field: str, max_seconds: float) -> tuple[str, int, float]:
    """``(format, sample_rate, seconds)`` from the header alone, or ``InvalidRequest(field, ...)``
    for anything that is not WAV, FLAC, OGG or MP3, is empty, or is longer than ``max_seconds``."""
    if not data:
        raise InvalidRequest(field, f"not audio ({ACCEPTED}): the file is empty (0 bytes)")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InvalidRequest(field, f"not audio ({ACCEPTED}): {_libsndfile_reason(exc)}") from None
    fmt = _FORMATS.get(info.format)
    if fmt is None:
        raise InvalidRequest(field, f"not audio ({ACCEPTED}): it is {info.format_info}")
    if info.channels < 1 or info.channels > MAX_CHANNELS:
        raise InvalidRequest(field, f"has {info.channels} channels: at most {MAX_CHANNELS} are accepted")
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise InvalidRequest(
            field,
            f"sample rate {info.samplerate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
        )
    if info.frames <= 0:
        raise InvalidRequest(field, "is empty audio (no samples)")
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        raise InvalidRequest(field, f"longer than {max_seconds:g} s: got {_seconds(seconds)} s")
    return fmt, int(info.samplerate), seconds


def decode_audio(data: bytes, field: str, max_seconds: float) -> DecodedAudio:
    """The whole file as float32 ``(frames, channels)`` at its own sample rate.

    The length is enforced on the samples actually decoded too, not only on the header's count
    (an MP3's length in its header is an estimate)."""
    fmt, sample_rate, _ = probe_audio(data, field, max_seconds)
    max_frames = math.floor(max_seconds * sample_rate)
    blocks: list[np.ndarray] = []
    total = 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            while True:
                block = handle.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not len(block):
                    break
                total += len(block)
                if total > max_frames:
                    raise InvalidRequest(
                        field,
                        f"longer than {max_seconds:g} s: got more than {_seconds(total / sample_rate)} s",
                    )
                blocks.append(block)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InvalidRequest(field, f"could not be decoded as {fmt}: {_libsndfile_reason(exc)}") from None
    if total == 0:
        raise InvalidRequest(field, "is empty audio (no samples)")
    audio = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    if not np.isfinite(audio).all():
        raise InvalidRequest(field, "holds non-finite samples (NaN or infinity)")
    return DecodedAudio(audio=np.ascontiguousarray(audio), sample_rate=sample_rate, format=fmt)


def to_stereo_44k(decoded: DecodedAudio) -> np.ndarray:
    """float32 ``(frames, 2)`` at 44.1 kHz (soxr, very high quality).

    Mono is duplicated onto both channels; more than two channels are mixed down to their mean
    on both (channel layouts differ between formats, so no speaker positions are assumed).
    Samples are not clipped: resampling may overshoot full scale slightly."""
    audio = decoded.audio
    if audio.ndim != 2 or audio.shape[1] < 1:
        raise ValueError(f"expected (frames, channels) audio, got shape {audio.shape}")
    if audio.shape[1] > 2:
        audio = audio.mean(axis=1, keepdims=True, dtype=np.float32)
    if decoded.sample_rate != TARGET_RATE:
        audio = soxr.resample(audio, decoded.sample_rate, TARGET_RATE, quality="VHQ")
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32)
