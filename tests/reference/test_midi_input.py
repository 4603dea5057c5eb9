import io
import json

import mido
import numpy as np
import pretty_midi
import pytest

from stemforge.music.chords import parse_chord
from stemforge.music.midi import part_to_midi
from stemforge.music.notes import Note
from stemforge.music.parts import compose_part
from stemforge.music.plan import build_plan
from stemforge.music.spec import MusicSpec
from stemforge.reference.midi_input import (
    InvalidMidi,
    MidiScore,
    read_midi,
    stem_for_track,
    supported_metre,
)

# Triads (close voicings around middle C) and bass roots of the chords the files play.
TRIADS = {
    "C": (60, 64, 67),
    "Dm": (62, 65, 69),
    "F": (53, 57, 60),
    "G": (55, 59, 62),
    "Am": (57, 60, 64),
    "Bb": (58, 62, 65),
}
ROOTS = {"C": 36, "Dm": 38, "F": 29, "G": 31, "Am": 33, "Bb": 34}


def song(bpm: float = 96.0, signature: tuple[int, int] | None = (4, 4)) -> pretty_midi.PrettyMIDI:
    out = pretty_midi.PrettyMIDI(initial_tempo=bpm, resolution=480)
    if signature:
        out.time_signature_changes.append(pretty_midi.TimeSignature(*signature, 0.0))
    return out


def add(
    target: pretty_midi.PrettyMIDI,
    notes: list[Note],
    program: int = 0,
    name: str = "",
    is_drum: bool = False,
) -> None:
    track = pretty_midi.Instrument(program=program, is_drum=is_drum, name=name)
    for n in notes:
        track.notes.append(pretty_midi.Note(n.velocity, n.pitch, n.start, n.start + n.duration))
    target.instruments.append(track)


def to_bytes(target: pretty_midi.PrettyMIDI) -> bytes:
    buffer = io.BytesIO()
    target.write(buffer)
    return buffer.getvalue()


def chord_notes(chords: list[str], bar_starts: list[float], bar_ends: list[float]) -> list[Note]:
    return [
        Note(start, end - start - 0.01, pitch, 80)
        for chord, start, end in zip(chords, bar_starts, bar_ends, strict=True)
        for pitch in TRIADS[chord]
    ]


def bass_notes(chords: list[str], bar_starts: list[float], bar_ends: list[float]) -> list[Note]:
    """The root on beats 1 and 3 of each bar (halves of the bar)."""
    out = []
    for chord, start, end in zip(chords, bar_starts, bar_ends, strict=True):
        half = (end - start) / 2
        out += [
            Note(start, half - 0.02, ROOTS[chord], 100),
            Note(start + half, half - 0.02, ROOTS[chord], 90),
        ]
    return out


def melody_notes(bars: int, bar: float, beats: int = 4, low: bool = False) -> list[Note]:
    """One note a beat, one at a time, around the fifth octave (below middle C when ``low``)."""
    line = [76, 72, 74, 69, 77, 76, 72, 71]
    beat = bar / beats
    return [
        Note(i * beat, beat * 0.9, line[i % len(line)] - (24 if low else 0), 90) for i in range(bars * beats)
    ]


def drum_notes(bars: int, bar: float) -> list[Note]:
    eighth = bar / 8
    out = []
    for i in range(bars * 8):
        out.append(Note(i * eighth, 0.05, 42, 70))  # closed hat on every eighth
        if i % 4 == 0:
            out.append(Note(i * eighth, 0.1, 36, 110))  # kick on 1 and 3
        if i % 4 == 2:
            out.append(Note(i * eighth, 0.1, 38, 100))  # snare on 2 and 4
    return out


def grid(bars: int, bar: float, offset: float = 0.0) -> tuple[list[float], list[float]]:
    starts = [offset + i * bar for i in range(bars)]
    return starts, [s + bar for s in starts]


PROGRESSION = ["Am", "F", "C", "G", "Am", "F", "C", "G"]
BAR_96 = 4 * 60 / 96  # 2.5 s


def band() -> tuple[bytes, dict[str, list[Note]]]:
    """Drums, bass (33), piano (0) on Am F C G twice, and a flute melody named "Melody", 96 BPM."""
    starts, ends = grid(8, BAR_96)
    parts = {
        "drums": drum_notes(8, BAR_96),
        "bass": bass_notes(PROGRESSION, starts, ends),
        "piano": chord_notes(PROGRESSION, starts, ends),
        "vocals": melody_notes(8, BAR_96),
    }
    target = song(96.0)
    add(target, parts["drums"], is_drum=True, name="Kit")
    add(target, parts["bass"], program=33, name="Bass")
    add(target, parts["piano"], program=0, name="Piano")
    add(target, parts["vocals"], program=73, name="Melody")
    return to_bytes(target), parts


def assert_same_notes(got: tuple[Note, ...], want: list[Note]) -> None:
    want = sorted(want, key=lambda n: (n.start, n.pitch))
    assert [n.pitch for n in got] == [n.pitch for n in want]
    assert [n.velocity for n in got] == [n.velocity for n in want]
    assert [n.start for n in got] == pytest.approx([n.start for n in want], abs=1e-3)
    assert [n.duration for n in got] == pytest.approx([n.duration for n in want], abs=1e-3)


# --- a whole band ------------------------------------------------------------------------------


def test_a_band_reads_back_its_tempo_metre_chords_key_and_stems():
    data, parts = band()
    score = read_midi(data)
    assert score.bpm == 96.0
    assert score.tempo_changes == ((0.0, 96.0),)
    assert (score.time_signature, score.beats_per_bar, score.first_downbeat_seconds) == ("4/4", 4, 0.0)
    assert score.chords == tuple(PROGRESSION)
    assert score.bars == 8
    assert score.key == "A minor"
    assert score.duration_seconds == pytest.approx(8 * BAR_96 - 0.01, abs=1e-3)
    assert [(t.name, t.program, t.is_drum, t.stem) for t in score.tracks] == [
        ("Kit", 0, True, "drums"),
        ("Bass", 33, False, "bass"),
        ("Piano", 0, False, "piano"),
        ("Melody", 73, False, "vocals"),
    ]
    stems = score.stems()
    assert set(stems) == set(parts)
    for stem, notes in parts.items():
        assert_same_notes(stems[stem], notes)
    assert all(isinstance(n, Note) for n in stems["bass"])


def test_the_summary_is_json():
    score = read_midi(band()[0])
    summary = json.loads(json.dumps(score.to_dict()))
    assert summary["bpm"] == 96.0
    assert summary["time_signature"] == "4/4"
    assert summary["bars"] == 8
    assert summary["chords"] == PROGRESSION
    assert summary["key"] == "A minor"
    assert summary["tracks"][1] == {
        "name": "Bass",
        "program": 33,
        "is_drum": False,
        "notes": 16,
        "stem": "bass",
    }
    assert [t["stem"] for t in summary["tracks"]] == ["drums", "bass", "piano", "vocals"]


def test_every_chord_parses_and_flat_keys_spell_flats():
    bar = 3 * 60 / 135  # 6/8 at a quarter-note tempo of 135: 90 dotted quarters a minute
    chords = ["Dm", "Bb", "C", "Dm"]
    starts, ends = grid(4, bar)
    target = song(135.0, (6, 8))
    add(target, chord_notes(chords, starts, ends), program=4)
    add(target, bass_notes(chords, starts, ends), program=34)
    score = read_midi(to_bytes(target))
    assert (score.time_signature, score.beats_per_bar, score.bpm) == ("6/8", 2, 90.0)
    assert score.chords == ("Dm", "Bb", "C", "Dm")
    assert score.key == "D minor"
    for symbol in score.chords:
        parse_chord(symbol)


def test_three_four_at_150():
    bar = 3 * 60 / 150
    chords = ["C", "G", "Am", "F", "C", "G"]
    starts, ends = grid(6, bar)
    target = song(150.0, (3, 4))
    add(target, chord_notes(chords, starts, ends), program=1)
    add(target, bass_notes(chords, starts, ends), program=33)
    score = read_midi(to_bytes(target))
    assert (score.bpm, score.time_signature, score.beats_per_bar) == (150.0, "3/4", 3)
    assert score.chords == tuple(chords)
    assert score.key == "C major"


def test_bars_follow_a_tempo_change():
    target = song(120.0)
    change_tick = 8 * 480  # bar 3: two bars of 4/4 at 120 (4 s), then 90
    target._tick_scales.append((change_tick, 60.0 / (90.0 * target.resolution)))
    target._update_tick_to_time(change_tick)
    starts = [0.0, 2.0, 4.0, 4.0 + 8 / 3]
    ends = [*starts[1:], 4.0 + 16 / 3]
    chords = ["C", "Am", "F", "G"]
    add(target, chord_notes(chords, starts, ends), program=0)
    add(target, bass_notes(chords, starts, ends), program=32)
    score = read_midi(to_bytes(target))
    assert score.bpm == 120.0
    assert score.tempo_changes == ((0.0, 120.0), (pytest.approx(4.0, abs=1e-3), 90.0))
    assert score.chords == tuple(chords)
    assert score.bars == 4


def test_a_pickup_moves_the_first_downbeat():
    target = song(120.0, (1, 4))
    target.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.5))
    starts, ends = grid(2, 2.0, offset=0.5)
    add(target, [Note(0.0, 0.45, 67, 90)], program=0, name="pickup")  # a G before bar 1
    add(target, chord_notes(["C", "F"], starts, ends), program=0)
    score = read_midi(to_bytes(target))
    assert score.time_signature == "4/4"
    assert score.first_downbeat_seconds == pytest.approx(0.5, abs=1e-3)
    assert score.chords == ("C", "F")


def test_played_in_timing_still_reads_one_chord_a_bar():
    rng = np.random.default_rng(3)
    starts, ends = grid(8, BAR_96)

    def loose(notes: list[Note]) -> list[Note]:  # early or late by up to 40 ms, held a little over
        out = []
        for n in notes:
            start = max(0.0, n.start + float(rng.uniform(-0.04, 0.04)))
            out.append(Note(start, n.duration + 0.05, n.pitch, n.velocity))
        return out

    target = song(96.0)
    add(target, loose(chord_notes(PROGRESSION, starts, ends)), program=2)
    add(target, loose(bass_notes(PROGRESSION, starts, ends)), program=35)
    add(target, loose(melody_notes(8, BAR_96)), program=73)
    score = read_midi(to_bytes(target))
    assert score.chords == tuple(PROGRESSION)
    assert [t.stem for t in score.tracks] == ["piano", "bass", "vocals"]


def test_empty_bars_repeat_the_previous_chord():
    starts, ends = grid(4, 2.0)
    target = song(120.0)
    # Bar 1 empty, C in bar 2, bar 3 empty, F in bar 4.
    add(target, chord_notes(["C", "F"], [starts[1], starts[3]], [ends[1], ends[3]]), program=0)
    score = read_midi(to_bytes(target))
    assert score.chords == ("C", "C", "C", "F")


def test_a_last_note_ringing_past_the_bar_line_opens_no_bar():
    target = song(120.0)
    add(target, [Note(0.0, 2.05, p, 80) for p in TRIADS["G"]], program=0)
    assert read_midi(to_bytes(target)).chords == ("G",)


def test_drums_only_have_no_chords_or_key():
    target = song(100.0)
    add(target, drum_notes(2, 2.4), is_drum=True)
    score = read_midi(to_bytes(target))
    assert (score.chords, score.key) == ((), None)
    assert score.bars == 2
    assert score.to_dict()["tracks"][0]["name"] == "Drums"
    assert set(score.stems()) == {"drums"}


def test_a_file_without_a_time_signature_is_four_four():
    target = song(100.0, None)
    add(target, chord_notes(["C"], [0.0], [2.4]), program=0)
    score = read_midi(to_bytes(target))
    assert (score.time_signature, score.beats_per_bar) == ("4/4", 4)


@pytest.mark.parametrize(
    ("numerator", "denominator", "metre"),
    [
        (4, 4, "4/4"),
        (3, 4, "3/4"),
        (6, 8, "6/8"),
        (12, 8, "12/8"),
        (2, 4, "4/4"),
        (2, 2, "4/4"),
        (5, 4, "4/4"),
        (7, 8, "4/4"),
        (3, 8, "3/4"),
        (3, 2, "3/4"),
        (6, 4, "3/4"),
        (6, 16, "6/8"),
        (9, 8, "12/8"),
        (12, 16, "12/8"),
    ],
)
def test_unsupported_metres_become_the_nearest_supported(numerator, denominator, metre):
    assert supported_metre(numerator, denominator) == metre


def test_a_five_four_file_is_read_in_four_four():
    target = song(120.0, (5, 4))
    add(target, chord_notes(["C", "G"], [0.0, 2.0], [2.0, 4.0]), program=0)
    score = read_midi(to_bytes(target))
    assert (score.time_signature, score.chords) == ("4/4", ("C", "G"))


def test_a_part_written_by_the_engine_reads_back_note_for_note():
    plan = build_plan(MusicSpec(bpm=96.0, duration_seconds=8.0, seed=2, style="funk", time_signature="6/8"))
    part = compose_part(plan, "bass")
    score = read_midi(part_to_midi(part, plan))
    assert (score.bpm, score.time_signature, score.beats_per_bar) == (96.0, "6/8", 2)
    assert score.tracks[0].stem == "bass"
    assert_same_notes(score.stems()["bass"], [n for n in part.notes if n.start < plan.end_seconds])


# --- which stem a track is ---------------------------------------------------------------------

MONO_HIGH = melody_notes(2, 2.0)
MONO_LOW = melody_notes(2, 2.0, low=True)
CHORDS = chord_notes(["C", "F"], [0.0, 2.0], [2.0, 4.0])


@pytest.mark.parametrize(
    ("program", "is_drum", "name", "notes", "stem"),
    [
        (0, True, "", CHORDS, "drums"),
        (0, True, "Lead Vocal", MONO_HIGH, "drums"),
        (0, False, "", CHORDS, "piano"),
        (5, False, "", CHORDS, "piano"),
        (9, False, "", MONO_HIGH, "other"),  # glockenspiel
        (11, False, "", CHORDS, "other"),  # vibraphone
        (16, False, "", CHORDS, "piano"),  # organ
        (19, False, "", CHORDS, "piano"),
        (24, False, "", CHORDS, "guitar"),
        (29, False, "Lead Guitar", MONO_HIGH, "guitar"),
        (31, False, "", CHORDS, "guitar"),
        (33, False, "", MONO_LOW, "bass"),
        (38, False, "", MONO_LOW, "bass"),
        (40, False, "", MONO_HIGH, "other"),  # violin
        (48, False, "", CHORDS, "other"),  # string ensemble
        (52, False, "", CHORDS, "vocals"),  # choir aahs
        (53, False, "", MONO_HIGH, "vocals"),  # voice oohs
        (54, False, "", CHORDS, "vocals"),  # synth voice
        (55, False, "", CHORDS, "other"),  # orchestra hit
        (56, False, "", MONO_HIGH, "other"),  # trumpet
        (61, False, "", CHORDS, "other"),  # brass section
        (65, False, "", MONO_HIGH, "vocals"),  # alto sax, a melody line
        (73, False, "", MONO_HIGH, "vocals"),  # flute, a melody line
        (73, False, "", CHORDS, "other"),  # flute chords
        (70, False, "", MONO_LOW, "other"),  # bassoon: one note at a time, but low
        (73, False, "", MONO_HIGH[:3], "other"),  # three notes are no melody line
        (80, False, "", MONO_HIGH, "synth"),  # square lead
        (81, False, "Synth Lead", MONO_HIGH, "synth"),
        (89, False, "", CHORDS, "synth"),  # warm pad
        (100, False, "", CHORDS, "synth"),
        (104, False, "", MONO_HIGH, "other"),  # sitar
        (118, False, "", MONO_HIGH, "other"),  # synth drum
        (127, False, "", CHORDS, "other"),
        (0, False, "Lead Vocal", MONO_HIGH, "vocals"),
        (0, False, "LeadVocal", MONO_HIGH, "vocals"),
        (30, False, "VOX 2", MONO_HIGH, "vocals"),
        (48, False, "Melody", MONO_HIGH, "vocals"),
        (0, False, "singer", CHORDS, "vocals"),
        (0, False, "Bass", MONO_LOW, "bass"),
        (0, False, "Rhythm Guitar", CHORDS, "guitar"),
        (0, False, "Drums", MONO_LOW, "drums"),
        (0, False, "Piano Melody", MONO_HIGH, "piano"),
        (0, False, "Synth Pad", CHORDS, "synth"),
        (48, False, "Bass", MONO_LOW, "other"),  # a set program wins over the name
    ],
)
def test_stem_for_track(program, is_drum, name, notes, stem):
    assert stem_for_track(program, is_drum, name, notes) == stem


def stems_of(*tracks: tuple[int, str, list[Note]]) -> list[str]:
    target = song(120.0)
    add(target, CHORDS, program=0, name="Piano")
    for program, name, notes in tracks:
        add(target, notes, program=program, name=name)
    score: MidiScore = read_midi(to_bytes(target))
    return [t.stem for t in score.tracks[1:]]


def test_a_lone_melody_line_is_the_vocal_line():
    assert stems_of((73, "", MONO_HIGH)) == ["vocals"]  # flute
    assert stems_of((40, "", MONO_HIGH)) == ["vocals"]  # violin: an "other" family's tune


def test_a_named_vocal_keeps_the_reed_melody_in_other():
    assert stems_of((73, "", MONO_HIGH), (0, "Vocals", MONO_HIGH)) == ["other", "vocals"]
    assert stems_of((73, "", MONO_HIGH), (53, "", MONO_HIGH)) == ["other", "vocals"]


def test_of_several_melody_lines_the_highest_sings():
    lower = [Note(n.start, n.duration, n.pitch - 7, n.velocity) for n in MONO_HIGH]
    assert stems_of((56, "", lower), (40, "", MONO_HIGH)) == ["other", "vocals"]
    assert stems_of((73, "", MONO_HIGH), (71, "", lower)) == ["vocals", "other"]


def test_specific_stems_are_never_taken_for_the_singer():
    assert stems_of((27, "", MONO_HIGH)) == ["guitar"]
    assert stems_of((81, "", MONO_HIGH)) == ["synth"]
    assert stems_of((73, "", CHORDS)) == ["other"]  # no melody line: nobody sings


# --- what is refused ---------------------------------------------------------------------------


def mido_file(*events: mido.Message | mido.MetaMessage, ticks_per_beat: int = 480) -> bytes:
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    midi.tracks.append(mido.MidiTrack(events))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def long_file() -> bytes:
    target = song(120.0)
    add(target, [Note(float(i), 0.5, 60, 80) for i in range(30)])
    return to_bytes(target)


def many_notes() -> bytes:
    target = song(120.0)
    add(target, [Note(i * 0.1, 0.1, 60 + i % 12, 80) for i in range(50)])
    return to_bytes(target)


def no_notes() -> bytes:
    target = song(120.0)
    target.instruments.append(pretty_midi.Instrument(program=0))
    return to_bytes(target)


def far_off_note() -> bytes:
    on, off = mido.Message("note_on", note=60, velocity=90, time=0), mido.Message("note_off", note=60, time=0)
    return mido_file(on, mido.Message("note_on", note=62, velocity=90, time=50_000_000), off)


def far_off_event() -> bytes:
    on, off = mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=480)
    return mido_file(on, off, mido.MetaMessage("marker", text="x", time=20_000_000))


def smpte_division() -> bytes:
    data = bytearray(
        mido_file(mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60))
    )
    data[12:14] = bytes([0xE7, 0x28])  # -25 frames a second, 40 ticks a frame
    return bytes(data)


def zero_tempo() -> bytes:
    on, off = mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=480)
    return mido_file(mido.MetaMessage("set_tempo", tempo=0), on, off)


RANDOM = np.random.default_rng(7).integers(0, 256, 512, dtype=np.uint8).tobytes()


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (b"", {}, "not a Standard MIDI File: the file is empty"),
        (RANDOM, {}, "not a Standard MIDI File"),
        (b"MThd" + RANDOM, {}, "not a Standard MIDI File"),
        (band()[0][:60], {}, "not a Standard MIDI File: it is cut short"),
        (b"RIFF" + band()[0], {}, "not a Standard MIDI File"),
        (smpte_division(), {}, "time division"),
        (zero_tempo(), {}, "a tempo of 0"),
        (no_notes(), {}, "no notes"),
        (long_file(), {"max_seconds": 20.0}, "longer than 20 s"),
        (far_off_note(), {}, "longer than 600 s"),
        (far_off_event(), {}, "not a Standard MIDI File"),
        (many_notes(), {"max_notes": 10}, "too many notes: 50 (at most 10)"),
    ],
    ids=[
        "empty",
        "random",
        "header-then-random",
        "truncated",
        "riff",
        "smpte",
        "zero-tempo",
        "no-notes",
        "too-long",
        "far-off-note",
        "far-off-event",
        "too-many-notes",
    ],
)
def test_bad_files_are_refused_with_a_reason(data, kwargs, message):
    with pytest.raises(InvalidMidi, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_midi(data, **kwargs)


def test_a_riff_rmid_file_is_read_as_the_midi_it_wraps():
    data = band()[0]
    chunk = b"data" + len(data).to_bytes(4, "little") + data + b"\0" * (len(data) & 1)
    rmid = b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"RMID" + chunk
    assert read_midi(rmid).chords == tuple(PROGRESSION)


def test_limits_are_inclusive():
    assert read_midi(long_file(), max_seconds=29.5).duration_seconds == pytest.approx(29.5, abs=1e-3)
    assert len(read_midi(many_notes(), max_notes=50).tracks[0].notes) == 50


def test_invalid_midi_is_a_value_error():
    assert issubclass(InvalidMidi, ValueError)
