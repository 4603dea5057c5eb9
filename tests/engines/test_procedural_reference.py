"""The procedural engine with a reference: bar 1 on the reference's first downbeat, a MIDI
file's tracks played as written, the other stems composed to its chords."""

import io
import json
from dataclasses import replace

import numpy as np
import pretty_midi
import pytest

from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.notes import Note
from stemforge.music.plan import build_plan
from stemforge.music.spec import SAMPLE_RATE, MusicSpec, ReferenceSpec
from stemforge.settings import Settings

SPEC = MusicSpec(bpm=100.0, duration_seconds=8.0, seed=3, chord_progression=("Am", "F", "C", "G"))


@pytest.fixture(scope="module")
def engine() -> ProceduralEngine:
    return ProceduralEngine(Settings())


def _midi_notes(data: bytes) -> list[tuple[int, float]]:
    song = pretty_midi.PrettyMIDI(io.BytesIO(data))
    return sorted((n.pitch, round(n.start, 3)) for n in song.instruments[0].notes)


@pytest.mark.parametrize("offset", [0.0, 0.37, 1.25])
def test_accompanying_starts_bar_one_on_the_reference_s_downbeat(
    engine: ProceduralEngine, offset: float
) -> None:
    reference = ReferenceSpec(mode="accompany", kind="audio", duration_seconds=8.0, offset_seconds=offset)
    result = engine.generate(replace(SPEC, reference=reference), ["bass"])
    stem = result.stems[0]
    assert json.loads(result.attachments[0].data)["bar_1_seconds"] == offset

    lead = round(offset * SAMPLE_RATE)
    assert stem.audio.shape == (SPEC.num_frames, 2)
    assert not stem.audio[:lead].any()
    # The MIDI moves with the audio: every note ``offset`` later than bar 1 of a song that long.
    from_bar_one = replace(
        SPEC, duration_seconds=8.0 - offset, reference=replace(reference, offset_seconds=0.0)
    )
    shorter = engine.generate(from_bar_one, ["bass"]).stems[0]
    expected = np.array([(p, start + offset) for p, start in _midi_notes(shorter.attachments[0].data)])
    np.testing.assert_allclose(np.array(_midi_notes(stem.attachments[0].data)), expected, atol=2e-3)
    np.testing.assert_array_equal(stem.audio[lead:], shorter.audio)


def test_an_accompaniment_plays_the_reference_s_chord_in_its_last_bar_too() -> None:
    chords = ("Am", "F", "C", "G", "Am", "F", "C", "E")
    spec = replace(SPEC, duration_seconds=19.5, chord_progression=chords)
    reference = ReferenceSpec(mode="accompany", kind="audio", duration_seconds=19.5)

    alone = build_plan(spec)
    along = build_plan(replace(spec, reference=reference))

    assert alone.chords[-1].symbol == "Am"  # a song of its own cadences home
    assert [c.symbol for c in along.chords] == list(chords[: along.bars])


def test_midi_parts_are_played_as_written_and_the_rest_composed(engine: ProceduralEngine) -> None:
    bass_line = tuple(Note(i * 0.6, 0.5, 33 + (i % 4) * 2, 100) for i in range(12))
    reference = ReferenceSpec(
        mode="accompany", kind="midi", duration_seconds=8.0, midi_parts=(("bass", bass_line),)
    )
    result = engine.generate(replace(SPEC, reference=reference), ["bass", "piano"])

    bass, piano = result.stems
    assert bass.info["part"] == "midi" and piano.info["part"] == "composed"
    assert _midi_notes(bass.attachments[0].data) == sorted((n.pitch, round(n.start, 3)) for n in bass_line)
    assert result.applied["reference_use"]["stems_from_midi"] == ["bass"]
    assert np.abs(bass.audio).max() > 0.01
