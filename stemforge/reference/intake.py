"""A request's reference, from its field to what the spec needs: fetched (through the SSRF
guard), decoded, probed and analysed before the job is accepted, within one time limit, so a
reference that cannot be used is a 422 naming its field, never a failed callback.

The fetch (I/O) happens where the request is (the ingress); the decoding and analysis
(``analyse_bytes``: CPU, librosa) wherever ``take_reference``'s ``analyse`` sends it: in the
service, the uploader deployment, which also keeps the audio in storage for the engines that
hear it. The analysis and the MIDI reading are pure (``analysis``, ``midi_input``).
"""

import asyncio
import io
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from stemforge.errors import InvalidRequest
from stemforge.jobs.ssrf import ascii_host
from stemforge.jobs.store import JOBS_PREFIX, REFERENCES_PREFIX
from stemforge.music.notes import Note
from stemforge.music.spec import SAMPLE_RATE, ReferenceSpec
from stemforge.reference.analysis import ReferenceAnalysis, analyse_reference
from stemforge.reference.decode import decode_audio, to_stereo_44k
from stemforge.reference.fetch import FetchLimits, classify_source, decode_base64_midi, fetch_url, read_blob
from stemforge.reference.midi_input import InvalidMidi, MidiScore, read_midi
from stemforge.storage.base import Storage

AUDIO_FIELD = "parameters.reference_audio"
MIDI_FIELD = "parameters.midi"
# Felt beats per bar of each metre, as the song plan counts them (compound metres in dotted
# quarters): the reference's tempo is read in the same beats.
BEATS_PER_BAR = {"4/4": 4, "3/4": 3, "6/8": 2, "12/8": 4}


@dataclass(frozen=True)
class ReferenceLimits:
    max_bytes: int
    max_seconds: float
    timeout_seconds: float
    allowed_hosts: Collection[str] = ()
    allow_http: bool = False


@dataclass(frozen=True)
class ReferenceIntake:
    """What a reference brings to the request: its musical facts, and the audio to keep."""

    mode: str
    kind: str  # "audio" or "midi"
    duration_seconds: float
    bpm: float | None
    first_downbeat_seconds: float | None
    chords: tuple[str, ...]
    time_signature: str | None  # the MIDI's; audio analysis is read in the request's metre
    analysis: dict[str, Any]  # parameters.reference_analysis
    mono: np.ndarray | None = None  # audio: mono float32 at SAMPLE_RATE, until it is stored
    midi_parts: tuple[tuple[str, tuple[Note, ...]], ...] = field(default=())
    audio_path: str | None = None  # where ``mono`` was stored, for engines that hear it

    @classmethod
    def of_audio(
        cls, analysis: ReferenceAnalysis, mode: str, mono: np.ndarray | None, format: str
    ) -> "ReferenceIntake":
        """What an analysed track brings (``mono``: its audio, to be kept for the engines)."""
        return cls(
            mode=mode,
            kind="audio",
            duration_seconds=analysis.duration_seconds,
            bpm=analysis.bpm,
            first_downbeat_seconds=analysis.first_downbeat_seconds,
            chords=analysis.chords,
            time_signature=None,
            analysis={"source": "audio", "format": format, **analysis.to_dict()},
            mono=mono,
        )

    def spec(self, offset_seconds: float) -> ReferenceSpec:
        return ReferenceSpec(
            mode=self.mode,
            kind=self.kind,
            duration_seconds=self.duration_seconds,
            offset_seconds=offset_seconds,
            audio_path=self.audio_path,
            midi_parts=self.midi_parts,
        )


def reference_path(generation_request_id: str, fingerprint: str) -> str:
    """The stored reference of one request body (a conflicting body never overwrites it)."""
    return f"{REFERENCES_PREFIX}/{generation_request_id}/{fingerprint[:16]}.flac"


def encode_reference(mono: np.ndarray) -> bytes:
    """Lossless and about half a WAV's size."""
    buffer = io.BytesIO()
    sf.write(buffer, mono, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def decode_reference(data: bytes) -> np.ndarray:
    audio, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return np.asarray(audio, dtype=np.float32)


# ``analyse(kind, data, mode, time_signature, target_bpm)``: the fetched bytes to an intake.
Analyse = Callable[[str, bytes, str, str | None, float | None], Awaitable[ReferenceIntake]]


async def take_reference(
    reference_audio: str | None,
    midi: str | None,
    mode: str | None,
    time_signature: str | None,
    target_bpm: float | None,
    storage: Storage,
    limits: ReferenceLimits,
    analyse: Analyse | None = None,
) -> ReferenceIntake | None:
    """Fetch, probe and analyse the request's reference (``None`` when it has none), within
    ``limits.timeout_seconds`` in all. ``analyse`` does the decoding and analysis (default: in a
    thread here, with ``analyse_bytes``)."""
    if reference_audio is None and midi is None:
        return None
    kind, value = ("audio", reference_audio) if reference_audio is not None else ("midi", midi or "")
    name = AUDIO_FIELD if kind == "audio" else MIDI_FIELD

    async def here(
        kind: str, data: bytes, mode: str, signature: str | None, bpm: float | None
    ) -> ReferenceIntake:
        return await asyncio.to_thread(analyse_bytes, kind, data, mode, signature, bpm, limits.max_seconds)

    try:
        async with asyncio.timeout(limits.timeout_seconds):
            data = await _read(value, name, storage, limits, midi=kind == "midi")
            return await (analyse or here)(kind, data, mode or "accompany", time_signature, target_bpm)
    except TimeoutError:
        raise InvalidRequest(
            name,
            f"not fetched and analysed within {limits.timeout_seconds:g} s (REFERENCE_TIMEOUT_SECONDS)",
        ) from None


def analyse_bytes(
    kind: str,
    data: bytes,
    mode: str,
    time_signature: str | None,
    target_bpm: float | None,
    max_seconds: float,
) -> ReferenceIntake:
    """Decode and analyse a fetched reference (blocking, CPU): ``InvalidRequest`` naming the
    field when it is not what it should be."""
    if kind == "audio":
        return _audio_intake(data, mode, time_signature, target_bpm, max_seconds)
    return _midi_intake(data, mode, max_seconds)


def warm_up() -> None:
    """The analysis's first run compiles librosa's kernels (seconds on a small machine): done at
    start-up, so no request's time limit pays for it."""
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    clip = (0.2 * np.sin(2 * np.pi * 220.0 * t) * (np.mod(t, 0.5) < 0.1)).astype(np.float32)
    analyse_reference(clip, SAMPLE_RATE)


async def _read(value: str, name: str, storage: Storage, limits: ReferenceLimits, *, midi: bool) -> bytes:
    kind = classify_source(value)
    if kind == "base64":
        decoded = decode_base64_midi(value, name, limits.max_bytes) if midi else None
        if decoded is None:
            raise InvalidRequest(
                name,
                "must be an https URL or the blob path of a file in our container"
                + (", or a Standard MIDI File in base64" if midi else ""),
            )
        return decoded
    if kind == "blob":
        if value.lstrip("/").startswith(JOBS_PREFIX):  # job records are no one's reference
            raise InvalidRequest(name, f"no file at blob path {value!r} in the container")
        return await asyncio.to_thread(read_blob, storage, value, name, limits.max_bytes)
    # Plain http (redirects included) only where allowed, or from a host exempt from the guard.
    allow_http = limits.allow_http or _host(value) in limits.allowed_hosts
    if not allow_http and value.strip().lower().startswith("http://"):
        raise InvalidRequest(name, "must be an https URL (plain http is off: REFERENCE_ALLOW_HTTP)")
    fetch = FetchLimits(max_bytes=limits.max_bytes, timeout_seconds=limits.timeout_seconds)
    return await fetch_url(value, name, fetch, limits.allowed_hosts, allow_http=allow_http)


def _host(url: str) -> str | None:
    try:
        return ascii_host(httpx.URL(url.strip())).lower().strip("[]")
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return None  # fetch_url refuses it, naming the field


def _audio_intake(
    data: bytes, mode: str, time_signature: str | None, target_bpm: float | None, max_seconds: float
) -> ReferenceIntake:
    decoded = decode_audio(data, AUDIO_FIELD, max_seconds)
    mono = to_stereo_44k(decoded).mean(axis=1).astype(np.float32)
    if mono.size == 0 or not np.isfinite(mono).all():
        raise InvalidRequest(AUDIO_FIELD, "holds no playable audio")
    analysis = analyse_reference(mono, SAMPLE_RATE, BEATS_PER_BAR.get(time_signature or "4/4", 4))
    if mode == "accompany" and analysis.bpm is None and target_bpm is None:
        raise InvalidRequest(
            AUDIO_FIELD,
            "no steady tempo found in the reference, so it cannot be accompanied: give "
            "parameters.target_bpm, or use reference_mode style",
        )
    return ReferenceIntake.of_audio(analysis, mode, mono, decoded.format)


def _midi_intake(data: bytes, mode: str, max_seconds: float) -> ReferenceIntake:
    try:
        score: MidiScore = read_midi(data, max_seconds=max_seconds)
    except InvalidMidi as exc:
        raise InvalidRequest(MIDI_FIELD, str(exc)) from None
    parts = tuple(sorted(score.stems().items()))
    return ReferenceIntake(
        mode=mode,
        kind="midi",
        duration_seconds=score.duration_seconds,
        bpm=score.bpm,
        first_downbeat_seconds=score.first_downbeat_seconds,
        chords=score.chords,
        time_signature=score.time_signature,
        analysis={"source": "midi", **score.to_dict()},
        midi_parts=parts,
    )
