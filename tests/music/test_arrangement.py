"""The arrangement model, measured on the notes: form, entries, idiom, variation, registers,
metres, and MIDI that holds exactly what is played."""

import io
import itertools
from collections import Counter

import numpy as np
import pretty_midi
import pytest

from stemforge.music.midi import part_to_midi
from stemforge.music.parts import compose_part
from stemforge.music.parts.drums import HAT, KICK, RIDE, SNARE
from stemforge.music.plan import build_plan
from stemforge.music.spec import STEM_TYPES, MusicSpec
from stemforge.music.styles import STYLES

ALL_STYLES = sorted(STYLES)
TEMPO = {"pop": 118, "rock": 132, "metal": 170, "hip-hop": 88, "house": 124, "edm": 128, "disco": 118,
         "funk": 104, "jazz": 140, "reggae": 76, "lo-fi": 78, "ballad": 66, "blues": 96}  # fmt: skip
BACKING = ("drums", "bass", "guitar", "piano", "synth", "other")


def _plan(style, seconds=30.0, seed=7, bpm=None, **kw):
    return build_plan(
        MusicSpec(bpm=float(bpm or TEMPO[style]), duration_seconds=seconds, seed=seed, style=style, **kw)
    )


@pytest.mark.parametrize("style", ALL_STYLES)
@pytest.mark.parametrize("seconds", [20.0, 25.0, 30.0])
def test_short_songs_still_have_a_verse_and_a_chorus(style, seconds):
    names = [s.name for s in _plan(style, seconds).sections]
    assert "verse" in names and "chorus" in names, names
    assert names[-1] != "verse"


@pytest.mark.parametrize("style", ALL_STYLES)
@pytest.mark.parametrize(("seconds", "seed"), [(12.0, 1), (30.0, 2), (61.0, 3)])
def test_the_song_cadences_to_the_tonic_with_a_final_hit(style, seconds, seed):
    plan = _plan(style, seconds, seed)
    assert plan.chord_at(plan.ending_bar).root == plan.key.tonic
    ending = plan.ending_bar * plan.bar_seconds
    drums = compose_part(plan, "drums").notes
    assert any(abs(n.start - ending) < 1e-6 and n.pitch == KICK for n in drums)
    bass = [n for n in compose_part(plan, "bass").notes if n.start >= ending - 1e-6]
    assert bass and bass[0].pitch % 12 == plan.key.tonic


@pytest.mark.parametrize("style", ALL_STYLES)
def test_instruments_enter_and_drop_out_by_section(style):
    plan = _plan(style, 60.0)
    intro = plan.sections[0]
    assert intro.name == "intro" and intro.tacet, [(s.name, s.tacet) for s in plan.sections]
    for stem in intro.tacet:
        notes = compose_part(plan, stem).notes
        assert not [n for n in notes if n.start < intro.end_bar * plan.bar_seconds - 0.05], stem
        assert notes, stem  # it enters later
    # Whatever rests, the harmony is always there.
    for bar in range(plan.ending_bar):
        assert any(plan.plays(s, bar) for s in ("piano", "guitar", "synth"))


@pytest.mark.parametrize("style", ["jazz", "blues"])
def test_walking_bass_walks_by_step_in_the_nearest_octave(style):
    intervals = []
    for seed in range(4):
        notes = sorted(compose_part(_plan(style, 30.0, seed, bpm=140), "bass").notes, key=lambda n: n.start)
        intervals += [abs(b.pitch - a.pitch) for a, b in itertools.pairwise(notes)]
    intervals_ = np.array(intervals)
    assert np.mean(intervals_ <= 5) >= 0.9  # mostly steps and skips up to a fourth
    assert np.mean(intervals_ > 7) <= 0.03 and intervals_.max() <= 12


@pytest.mark.parametrize("style", ALL_STYLES)
def test_a_slash_chord_puts_its_slash_note_in_the_bass_and_keeps_its_fifth(style):
    plan = _plan(style, 20.0, 1, bpm=100, chord_progression=("G/B", "C"))
    for note in compose_part(plan, "bass").notes:
        bar = int((note.start + 0.01) // plan.bar_seconds)
        if bar % 2 or bar >= plan.ending_bar:
            continue
        if abs(note.start - bar * plan.bar_seconds) < 1e-6:
            assert note.pitch % 12 == 11  # B on the downbeat
        last_beat = note.start >= (bar + 1) * plan.bar_seconds - plan.beat_seconds - 0.03
        if not last_beat:  # (the last beat may approach the next chord chromatically)
            assert note.pitch % 12 != 6, note  # never F#, the fifth of B


def test_the_jazz_drummer_comps_on_the_snare():
    plan = _plan("jazz", 30.0)
    drums = compose_part(plan, "drums").notes
    body = [
        n
        for n in drums
        if plan.sections[0].end_bar * plan.bar_seconds <= n.start < plan.ending_bar * plan.bar_seconds
    ]
    bars = plan.ending_bar - plan.sections[0].end_bar
    snares = [n for n in body if n.pitch == SNARE]
    assert len(snares) / bars >= 1.5
    assert {n.velocity < 70 for n in snares} == {True, False}  # ghosts and accents
    assert sum(n.pitch == RIDE for n in body) / bars >= 3


def test_the_drum_kit_is_spread_across_the_stereo_field():
    part = compose_part(_plan("rock"), "drums")
    assert part.key_pans[KICK] == 0.0 and part.key_pans[HAT] > 0.2 and part.key_pans[RIDE] < -0.2


@pytest.mark.parametrize("style", ALL_STYLES)
def test_a_new_seed_is_a_new_take_of_the_backing(style):
    progression = ("C", "Am", "F", "G")
    changed = []
    for seed in (1, 2, 3):
        first = _plan(style, 30.0, seed, bpm=120, chord_progression=progression)
        second = _plan(style, 30.0, seed + 10, bpm=120, chord_progression=progression)
        grid = first.beat_seconds / 4
        for stem in BACKING:
            a = Counter((round(n.start / grid), n.pitch) for n in compose_part(first, stem).notes)
            b = Counter((round(n.start / grid), n.pitch) for n in compose_part(second, stem).notes)
            changed.append(1 - sum((a & b).values()) / max(sum(a.values()), sum(b.values())))
    assert np.mean(changed) >= 0.15


@pytest.mark.parametrize("style", ALL_STYLES)
@pytest.mark.parametrize("word", ["acoustic", "busy", "sparse", "energetic"])
def test_prompt_words_change_the_arrangement(style, word):
    plain = _plan(style, 20.0, 3, bpm=110)
    steered = _plan(style, 20.0, 3, bpm=110, prompt=word)
    changed = 0
    for stem in BACKING:
        a, b = compose_part(plain, stem), compose_part(steered, stem)
        grid = plain.beat_seconds / 4
        notes_a = Counter((round(n.start / grid), n.pitch) for n in a.notes)
        notes_b = Counter((round(n.start / grid), n.pitch) for n in b.notes)
        same = sum((notes_a & notes_b).values()) / max(sum(notes_a.values()), sum(notes_b.values()))
        changed += a.instrument != b.instrument or same < 0.9
    assert changed >= 2


@pytest.mark.parametrize("style", ["rock", "metal", "blues"])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_distorted_guitar_is_never_punched_full_of_holes(style, temperature):
    plan = _plan(style, 30.0, 5, temperature=temperature, prompt="distorted")
    notes = sorted(compose_part(plan, "guitar").notes, key=lambda n: n.start)
    for a, b in itertools.pairwise(notes):
        bar = int(b.start // plan.bar_seconds)
        if not plan.plays("guitar", bar) or not plan.plays("guitar", max(0, bar - 1)):
            continue
        end = max(n.start + n.duration for n in notes if n.start <= a.start)
        assert b.start - end < 0.3 * plan.beat_seconds, (a, b)


@pytest.mark.parametrize("style", ALL_STYLES)
def test_registers_pad_under_the_voice_strings_over_it_piano_below_it(style):
    plan = _plan(style, 30.0)
    pitches = {
        s: np.array([n.pitch for n in compose_part(plan, s).notes]) for s in ("vocals", "piano", "synth")
    }
    voice = pitches["vocals"]
    if plan.style.synth == "pad":
        assert np.percentile(pitches["synth"], 90) <= np.median(voice)
    assert np.median(pitches["piano"]) < np.median(voice)
    other = compose_part(plan, "other")
    if other.instrument.voice == "strings":
        strings = np.array([n.pitch for n in other.notes])
        assert np.median(strings) > np.percentile(voice, 75)


@pytest.mark.parametrize("style", ALL_STYLES)
def test_piano_and_guitar_comp_on_different_onsets(style):
    plan = _plan(style, 30.0)
    grid = plan.beat_seconds / 4
    piano, guitar = (
        {round(n.start / grid) for n in compose_part(plan, s).notes} for s in ("piano", "guitar")
    )
    assert len(piano & guitar) / len(piano | guitar) <= 0.3


@pytest.mark.parametrize("style", ALL_STYLES)
@pytest.mark.parametrize("stem", STEM_TYPES)
def test_no_note_overlaps_its_own_pitch_and_the_midi_holds_every_note(style, stem):
    plan = _plan(style, 20.0, 9, temperature=2.0)
    part = compose_part(plan, stem)
    last_end: dict[int, float] = {}
    for note in sorted(part.notes, key=lambda n: n.start):
        assert note.duration >= 0.01
        assert note.start >= last_end.get(note.pitch, -1.0), note
        last_end[note.pitch] = note.start + note.duration
    (track,) = pretty_midi.PrettyMIDI(io.BytesIO(part_to_midi(part, plan))).instruments
    assert len(track.notes) == len(part.notes)
    assert all(n.end - n.start > 0.005 for n in track.notes)
    written = sorted((n.pitch, n.start, n.end) for n in track.notes)
    played = sorted((n.pitch, n.start, n.start + n.duration) for n in part.notes)
    for (pitch, start, end), (p, s, e) in zip(written, played, strict=True):
        assert pitch == p and abs(start - s) < 0.002 and abs(end - e) < 0.002


@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8", "12/8"])
@pytest.mark.parametrize("style", ["pop", "jazz", "blues", "house"])
def test_every_part_plays_in_the_requested_time_signature(meter, style):
    plan = _plan(style, 20.0, 2, bpm=100, time_signature=meter)
    assert plan.meter == meter and plan.to_dict()["time_signature"] == meter
    beats = {"4/4": 4, "3/4": 3, "6/8": 2, "12/8": 4}[meter]
    assert plan.beats_per_bar == beats
    for stem in STEM_TYPES:
        part = compose_part(plan, stem)
        downbeats = {round(n.start / plan.bar_seconds, 3) for n in part.notes}
        assert part.notes and any(float(d).is_integer() for d in downbeats), stem
    kicks = [n.start for n in compose_part(plan, "drums").notes if n.pitch == KICK]
    bar_starts = [bar * plan.bar_seconds for bar in range(plan.ending_bar)]
    assert all(min(abs(k - t) for k in kicks) < 0.03 for t in bar_starts)
    song = pretty_midi.PrettyMIDI(io.BytesIO(part_to_midi(compose_part(plan, "bass"), plan)))
    signature = song.time_signature_changes[0]
    assert f"{signature.numerator}/{signature.denominator}" == meter


def test_blues_plays_the_twelve_bar_form_in_twelve_bar_choruses():
    plan = _plan("blues", 120.0, 1, bpm=120)
    assert [c.symbol for c in plan.chords[:12]] == [c.symbol for c in plan.chords[12:24]]
    assert len({c.symbol for c in plan.chords[:12]}) == 3  # I7, IV7, V7
    assert all(s.start_bar % 12 == 0 for s in plan.sections)
