"""Stems that play along with the user's own music, through the real HTTP contract: a reference
track behind a URL (a real loopback server), a MIDI file in base64, and the 422s of a reference
that cannot be used."""

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.spec import SAMPLE_RATE, MusicSpec
from stemforge.reference.analysis import analyse_reference
from stemforge.settings import Settings
from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver
from tests.support.file_server import FileServer, serve_files

pytestmark = pytest.mark.integration

REFERENCE_BPM = 97.0
REFERENCE_CHORDS = ("Am", "F", "C", "G")
LEAD_IN_SECONDS = 0.6  # silence before the reference's first downbeat


def _wav(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reference_track() -> np.ndarray:
    """The user's track: a band at 97 BPM on Am F C G, its bar 1 0.6 s in."""
    spec = MusicSpec(bpm=REFERENCE_BPM, duration_seconds=16.0, seed=11, chord_progression=REFERENCE_CHORDS)
    stems = ProceduralEngine(Settings()).generate(spec, ["drums", "bass", "piano"]).stems
    band = sum(stem.audio for stem in stems)
    lead_in = np.zeros((round(LEAD_IN_SECONDS * SAMPLE_RATE), 2), dtype=np.float32)
    return np.concatenate([lead_in, band]).astype(np.float32)


@pytest.fixture(scope="module")
def files(reference_track: np.ndarray) -> Iterator[FileServer]:
    with serve_files() as server:
        server.add("track.wav", _wav(reference_track), "audio/wav")
        server.add("page.html", b"<html><body>not audio</body></html>", "text/html")
        t = np.arange(8 * SAMPLE_RATE) / SAMPLE_RATE
        pad = 0.2 * sum(np.sin(2 * np.pi * hz * t) for hz in (220.0, 261.63, 329.63))  # no rhythm
        server.add("pad.wav", _wav(pad.astype(np.float32)), "audio/wav")
        server.add("long.wav", _wav(np.zeros(301 * 8000, dtype=np.float32), 8000), "audio/wav")
        yield server


def _body(gen_id: str, callback_url: str, stems: list[str], **parameters: object) -> dict:
    return {
        "generation_request_id": gen_id,
        "audio_file_id": "user-track",
        "target_stems": stems,
        "parameters": parameters,
        "callback_url": callback_url,
    }


def _stem_audio(service: Service, entry: dict) -> np.ndarray:
    response = service.client.get(entry["blob_url"])
    response.raise_for_status()
    audio, _ = sf.read(io.BytesIO(response.content), dtype="float32", always_2d=True)
    return audio


def test_stems_play_along_with_a_track_behind_a_url(
    service: Service, callback_receiver: CallbackReceiver, files: FileServer, reference_track: np.ndarray
) -> None:
    heard = analyse_reference(reference_track, SAMPLE_RATE)
    body = _body(
        "ref-accompany",
        callback_receiver.url,
        ["bass", "piano", "drums"],
        reference_audio=files.url("track.wav"),
    )

    response = service.generate(body)

    assert response.status_code == 202, response.text
    payload = callback_receiver.wait_for("ref-accompany", timeout=120)
    assert payload["status"] == "completed", payload.get("error")
    parameters = payload["parameters"]
    analysis = parameters["reference_analysis"]
    assert analysis["bpm"] == pytest.approx(REFERENCE_BPM, rel=0.01)
    assert analysis["first_downbeat_seconds"] == pytest.approx(LEAD_IN_SECONDS, abs=0.02)
    assert parameters["reference_mode"] == "accompany"
    assert parameters["reference_sources"] == {
        "target_bpm": "reference",
        "chord_progression": "reference",
        "duration_seconds": "reference",
        "time_signature": "default",
    }
    assert parameters["target_bpm"] == pytest.approx(analysis["bpm"], abs=0.01)
    assert parameters["duration_seconds"] == pytest.approx(reference_track.shape[0] / SAMPLE_RATE, abs=1e-3)

    stems = {entry["stem_type"]: _stem_audio(service, entry) for entry in payload["generated_stems"]}
    assert {name: audio.shape[0] for name, audio in stems.items()} == dict.fromkeys(
        stems, reference_track.shape[0]
    )
    band = analyse_reference(sum(stems.values()), SAMPLE_RATE)
    assert band.bpm == pytest.approx(heard.bpm, rel=0.01)
    assert band.first_downbeat_seconds == pytest.approx(heard.first_downbeat_seconds, abs=0.02)
    bars = min(len(band.chords), len(heard.chords))
    agree = sum(a == b for a, b in zip(band.chords[:bars], heard.chords[:bars], strict=True)) / bars
    assert agree >= 0.9, (band.chords, heard.chords)
    # Before bar 1 the accompaniment waits, silent.
    lead = round(0.9 * LEAD_IN_SECONDS * SAMPLE_RATE)
    assert max(float(np.abs(audio[:lead]).max()) for audio in stems.values()) == 0.0


def _band_midi() -> tuple[bytes, dict[str, list[tuple[int, float]]]]:
    """Drums (channel 10), a bass (program 33), piano chords and a flute melody at 96 BPM."""
    song = pretty_midi.PrettyMIDI(initial_tempo=96.0)
    beat = 60.0 / 96.0
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
    bass = pretty_midi.Instrument(program=33, name="Bass")
    piano = pretty_midi.Instrument(program=0, name="Piano")
    melody = pretty_midi.Instrument(program=73, name="Melody")
    chords = {"Am": (57, 60, 64), "F": (53, 57, 60), "C": (48, 52, 55), "G": (55, 59, 62)}
    roots = {"Am": 33, "F": 29, "C": 36, "G": 31}
    for bar, symbol in enumerate(["Am", "F", "C", "G"] * 2):
        start = bar * 4 * beat
        for step in range(8):
            at = start + step * beat / 2
            drums.notes.append(pretty_midi.Note(90, 42, at, at + 0.05))
            if step % 4 == 0:
                drums.notes.append(pretty_midi.Note(110, 36, at, at + 0.1))
            if step % 4 == 2:
                drums.notes.append(pretty_midi.Note(100, 38, at, at + 0.1))
        for step in range(4):
            at = start + step * beat
            bass.notes.append(pretty_midi.Note(100, roots[symbol], at, at + beat * 0.9))
        for pitch in chords[symbol]:
            piano.notes.append(pretty_midi.Note(80, pitch, start, start + 4 * beat * 0.95))
        for step, pitch in enumerate((76, 74, 72, 71)):
            at = start + step * beat
            melody.notes.append(pretty_midi.Note(90, pitch, at, at + beat * 0.8))
    song.instruments.extend([drums, bass, piano, melody])
    buffer = io.BytesIO()
    song.write(buffer)
    written = {
        stem: [(n.pitch, round(n.start, 3)) for n in sorted(track.notes, key=lambda n: (n.start, n.pitch))]
        for stem, track in (("drums", drums), ("bass", bass), ("piano", piano))
    }
    return buffer.getvalue(), written


def test_a_midi_file_drives_the_parts_and_the_rest_is_composed_to_fit(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    data, written = _band_midi()
    body = _body(
        "ref-midi",
        callback_receiver.url,
        ["drums", "bass", "piano", "guitar"],
        midi=base64.b64encode(data).decode(),
        duration_seconds=24.0,
    )

    response = service.generate(body)

    assert response.status_code == 202, response.text
    payload = callback_receiver.wait_for("ref-midi", timeout=120)
    assert payload["status"] == "completed", payload.get("error")
    parameters = payload["parameters"]
    assert parameters["target_bpm"] == pytest.approx(96.0)
    assert parameters["chord_progression"][:4] == ["Am", "F", "C", "G"]
    assert parameters["reference_analysis"]["source"] == "midi"
    entries = {entry["stem_type"]: entry for entry in payload["generated_stems"]}
    for stem, notes in written.items():
        assert entries[stem]["part"] == "midi"
        midi = pretty_midi.PrettyMIDI(io.BytesIO(service.client.get(entries[stem]["midi_url"]).content))
        played = sorted((n.pitch, round(n.start, 3)) for n in midi.instruments[0].notes)
        assert played == sorted(notes), stem
    assert entries["guitar"]["part"] == "composed"
    guitar = _stem_audio(service, entries["guitar"])
    assert guitar.shape[0] == round(24.0 * SAMPLE_RATE)
    assert payload["quality"] is not None


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        ({"reference_audio": "http://127.0.0.1:1/track.wav"}, "parameters.reference_audio", "unreachable"),
        ({"reference_audio": "FILES/missing.wav"}, "parameters.reference_audio", "HTTP 404"),
        ({"reference_audio": "FILES/page.html"}, "parameters.reference_audio", "not audio"),
        ({"reference_audio": "FILES/long.wav"}, "parameters.reference_audio", "longer than 300 s"),
        ({"reference_audio": "FILES/pad.wav"}, "parameters.reference_audio", "no steady tempo"),
        ({"reference_audio": "no/such/blob.wav"}, "parameters.reference_audio", "no file at blob path"),
        ({"reference_audio": "ftp://example.com/a.wav"}, "parameters.reference_audio", "https URL"),
        ({"midi": "FILES/track.wav"}, "parameters.midi", "not a Standard MIDI File"),
        (
            {"midi": base64.b64encode(bytes(range(256))).decode()},
            "parameters.midi",
            "not a Standard MIDI File",
        ),
        (
            {"reference_audio": "FILES/track.wav", "reference_mode": "continue"},
            "parameters.reference_audio",
            "cannot follow",
        ),
        ({"reference_mode": "style"}, "parameters", "needs parameters.reference_audio"),
        ({"reference_audio": "FILES/track.wav", "midi": "FILES/a.mid"}, "parameters", "not both"),
        ({"midi": "FILES/a.mid", "reference_mode": "continue"}, "parameters", "needs reference_audio"),
    ],
)
def test_a_reference_that_cannot_be_used_is_refused_at_submission(
    service: Service, files: FileServer, parameters: dict, field: str, message: str
) -> None:
    parameters = {
        k: v.replace("FILES/", files.url("")) if isinstance(v, str) else v for k, v in parameters.items()
    }
    gen_id = f"ref-refused-{abs(hash((field, message))) % 10**8}"
    body = {
        "generation_request_id": gen_id,
        "audio_file_id": "user-track",
        "target_stems": ["bass"],
        "parameters": parameters,
    }

    response = service.generate(body)

    assert response.status_code == 422, response.text
    detail = response.json()
    assert field in detail["message"], detail
    assert message in detail["message"], detail
    assert service.client.get(f"{service.base_url}/generate/{gen_id}").status_code == 404


def test_a_reference_already_in_the_container_is_read_from_there(
    service: Service, callback_receiver: CallbackReceiver, blob_root: Path, reference_track: np.ndarray
) -> None:
    path = blob_root / "uploads" / "take-1.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_wav(reference_track[: 8 * SAMPLE_RATE]))
    body = _body(
        "ref-blob",
        callback_receiver.url,
        ["bass"],
        reference_audio="uploads/take-1.wav",
        reference_mode="style",
    )

    assert service.generate(body).status_code == 202
    payload = callback_receiver.wait_for("ref-blob", timeout=120)

    assert payload["status"] == "completed", payload.get("error")
    assert payload["parameters"]["reference_mode"] == "style"
    assert payload["parameters"]["reference_analysis"]["bpm"] == pytest.approx(REFERENCE_BPM, rel=0.01)
    # Style is not aligned to the track: the stems start at once.
    assert payload["parameters"]["reference_analysis"]["stems_start_seconds"] == 0.0
    # Kept only while the job runs: gone once it is closed (just after its callback).
    deadline = time.monotonic() + 15
    while list((blob_root / "_jobs" / "references").glob("ref-blob/*")):
        assert time.monotonic() < deadline, "the stored reference outlived its job"
        time.sleep(0.2)
