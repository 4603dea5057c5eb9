"""From a request's reference field to what the spec needs, against a real loopback server and
real local storage: the limits, the http rule, blob paths, MIDI in base64."""

import asyncio
import base64
import io
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from stemforge.errors import InvalidRequest
from stemforge.music.spec import SAMPLE_RATE
from stemforge.reference.intake import (
    ReferenceIntake,
    ReferenceLimits,
    decode_reference,
    encode_reference,
    take_reference,
)
from stemforge.storage.local import LocalDiskStorage
from tests.support.file_server import FileServer, serve_files

LOOPBACK = ReferenceLimits(
    max_bytes=10_000_000, max_seconds=60, timeout_seconds=20, allowed_hosts=("127.0.0.1",)
)


def _clicks(bpm: float = 120.0, seconds: float = 8.0) -> bytes:
    audio = np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)
    for beat in np.arange(0, seconds, 60.0 / bpm):
        start = round(beat * SAMPLE_RATE)
        audio[start : start + 400] = np.hanning(400) * 0.8
    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files() -> FileServer:
    with serve_files() as server:
        server.add("clicks.wav", _clicks(), "audio/wav")
        yield server


@pytest.fixture()
def storage(tmp_path: Path) -> LocalDiskStorage:
    return LocalDiskStorage(tmp_path, "audio-files", "http://localhost:8080")


def _take(
    storage: LocalDiskStorage, limits: ReferenceLimits = LOOPBACK, **fields: object
) -> ReferenceIntake | None:
    return asyncio.run(
        take_reference(
            fields.get("audio"),  # type: ignore[arg-type]
            fields.get("midi"),  # type: ignore[arg-type]
            fields.get("mode"),  # type: ignore[arg-type]
            None,
            None,
            storage,
            limits,
        )
    )


def test_a_track_behind_a_url_is_fetched_analysed_and_kept_as_mono(
    files: FileServer, storage: LocalDiskStorage
) -> None:
    intake = _take(storage, audio=files.url("clicks.wav"))

    assert intake is not None and intake.kind == "audio" and intake.mode == "accompany"
    assert intake.bpm == pytest.approx(120.0, rel=0.01)
    assert intake.duration_seconds == pytest.approx(8.0)
    assert intake.mono is not None and intake.mono.ndim == 1
    np.testing.assert_allclose(decode_reference(encode_reference(intake.mono)), intake.mono, atol=1 / 32768)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            ReferenceLimits(max_bytes=1024, max_seconds=60, timeout_seconds=20, allowed_hosts=("127.0.0.1",)),
            "larger than",
        ),
        (
            ReferenceLimits(max_bytes=10**7, max_seconds=5, timeout_seconds=20, allowed_hosts=("127.0.0.1",)),
            "longer than 5 s",
        ),
        (
            ReferenceLimits(
                max_bytes=10**7, max_seconds=60, timeout_seconds=1e-4, allowed_hosts=("127.0.0.1",)
            ),
            "within",
        ),
        (ReferenceLimits(max_bytes=10**7, max_seconds=60, timeout_seconds=20), "https URL"),
    ],
)
def test_limits_refuse_with_the_field_and_the_limit(
    files: FileServer, storage: LocalDiskStorage, limits: ReferenceLimits, message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _take(storage, limits, audio=files.url("clicks.wav"))
    assert caught.value.field == "parameters.reference_audio"
    assert message in caught.value.message


def test_plain_http_is_accepted_when_allowed(files: FileServer, storage: LocalDiskStorage) -> None:
    # The SSRF guard still refuses loopback: what passes the http rule is the guard's to judge.
    limits = ReferenceLimits(max_bytes=10**7, max_seconds=60, timeout_seconds=20, allow_http=True)
    with pytest.raises(InvalidRequest) as caught:
        _take(storage, limits, audio=files.url("clicks.wav"))
    assert "https" not in caught.value.message


def test_a_file_in_the_container_is_read_but_never_a_job_record(storage: LocalDiskStorage) -> None:
    storage.put("uploads/take.wav", _clicks(), content_type="audio/wav")
    storage.put("_jobs/records/other.json", b"{}", content_type="application/json")

    intake = _take(storage, audio="uploads/take.wav", mode="style")

    assert intake is not None and intake.mode == "style"
    with pytest.raises(InvalidRequest, match="no file at blob path"):
        _take(storage, audio="_jobs/records/other.json")


def test_midi_in_base64_gives_its_parts_tempo_and_chords(storage: LocalDiskStorage) -> None:
    song = pretty_midi.PrettyMIDI(initial_tempo=90.0)
    bass = pretty_midi.Instrument(program=33, name="Bass")
    for bar, root in enumerate((45, 41, 48, 43)):
        bass.notes.append(
            pretty_midi.Note(100, root, bar * 2 * 60 / 90 * 2, (bar + 1) * 2 * 60 / 90 * 2 - 0.1)
        )
    song.instruments.append(bass)
    buffer = io.BytesIO()
    song.write(buffer)

    intake = _take(storage, midi=base64.b64encode(buffer.getvalue()).decode())

    assert intake is not None and intake.kind == "midi" and intake.mono is None
    assert intake.bpm == pytest.approx(90.0)
    assert [name for name, _ in intake.midi_parts] == ["bass"]
    assert len(intake.midi_parts[0][1]) == 4
    assert intake.analysis["source"] == "midi"


def test_no_reference_is_no_intake(storage: LocalDiskStorage) -> None:
    assert _take(storage) is None
