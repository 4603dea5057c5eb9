import io

import pretty_midi
import pytest

from stemforge.music.midi import part_to_midi
from stemforge.music.parts import compose_part
from stemforge.music.plan import build_plan
from stemforge.music.spec import MusicSpec


@pytest.mark.parametrize("stem", ["drums", "bass", "piano", "vocals"])
def test_midi_holds_the_parts_notes_on_the_plans_tempo(stem):
    plan = build_plan(MusicSpec(bpm=96.0, duration_seconds=12.0, seed=2, style="funk"))
    part = compose_part(plan, stem)
    song = pretty_midi.PrettyMIDI(io.BytesIO(part_to_midi(part, plan)))
    assert song.get_tempo_changes()[1][0] == pytest.approx(96.0)
    (track,) = song.instruments
    assert track.is_drum == (stem == "drums")
    assert track.program == (0 if stem == "drums" else part.instrument.program)
    assert len(track.notes) == len([n for n in part.notes if n.start < plan.end_seconds])
    first = min(part.notes, key=lambda n: (n.start, n.pitch))
    assert min(track.notes, key=lambda n: (n.start, n.pitch)).pitch == first.pitch
    assert max(n.end for n in track.notes) <= 12.0 + 1e-3
