import itertools

import numpy as np
import pytest

from stemforge.music.parts import compose_part
from stemforge.music.parts.drums import CLAP, KICK, RIM, SNARE, TOM_FLOOR, TOM_HIGH, TOM_LOW, TOM_MID
from stemforge.music.plan import build_plan
from stemforge.music.spec import STEM_TYPES, MusicSpec
from stemforge.music.styles import STYLES
from stemforge.music.theory import chord_pitch_set

ALL_STYLES = sorted(STYLES)


def _plan(style="pop", bpm=120.0, seconds=32.0, seed=4, temperature=1.0, progression=None, prompt=None):
    return build_plan(
        MusicSpec(
            bpm=bpm,
            duration_seconds=seconds,
            seed=seed,
            temperature=temperature,
            style=style,
            prompt=prompt,
            chord_progression=progression,
        )
    )


def _onsets_near(notes, times, pitches, tolerance):
    starts = np.array([n.start for n in notes if n.pitch in pitches])
    return [bool(len(starts)) and float(np.min(np.abs(starts - t))) <= tolerance for t in times]


@pytest.mark.parametrize("style", ["house", "edm", "disco"])
def test_four_on_the_floor_styles_kick_every_beat(style):
    plan = _plan(style, bpm=120.0)
    notes = compose_part(plan, "drums").notes
    beats = [
        bar * plan.bar_seconds + b * plan.beat_seconds for bar in range(plan.ending_bar) for b in range(4)
    ]
    assert all(_onsets_near(notes, beats, {KICK}, 0.01))


@pytest.mark.parametrize("style", ["rock", "pop", "funk", "metal", "hip-hop", "lo-fi", "blues"])
def test_backbeat_styles_hit_beats_two_and_four(style):
    plan = _plan(style, temperature=0.0)
    notes = compose_part(plan, "drums").notes
    verse = next(s for s in plan.sections if s.name != "intro")
    times = [
        bar * plan.bar_seconds + b * plan.beat_seconds
        for bar in range(verse.start_bar, verse.end_bar - 1)
        for b in (1, 3)
    ]
    assert all(_onsets_near(notes, times, {SNARE, CLAP, RIM}, 0.02))


@pytest.mark.parametrize("style", ["rock", "pop", "metal", "ballad", "funk"])
def test_drums_fill_at_the_end_of_each_section(style):
    plan = _plan(style, seconds=90.0, temperature=0.5)
    notes = compose_part(plan, "drums").notes
    toms = {TOM_HIGH, TOM_MID, TOM_LOW, TOM_FLOOR, SNARE}
    for section in plan.sections[:-1]:
        bar = section.end_bar - 1
        last_beat = bar * plan.bar_seconds + 3 * plan.beat_seconds
        in_fill = [
            n for n in notes if n.pitch in toms and last_beat - 0.02 <= n.start < (bar + 1) * plan.bar_seconds
        ]
        assert len(in_fill) >= 2, f"no fill before bar {section.end_bar}"


def test_patterns_differ_by_style():
    signatures = set()
    for style in ALL_STYLES:
        plan = _plan(style, temperature=0.0)
        bar = plan.sections[-1].start_bar
        notes = compose_part(plan, "drums").notes
        in_bar = sorted(
            (round((n.start - bar * plan.bar_seconds) / plan.beat_seconds * 4), n.pitch)
            for n in notes
            if bar * plan.bar_seconds - 0.03 <= n.start < (bar + 1) * plan.bar_seconds - 0.03
        )
        signatures.add(tuple(in_bar))
    assert len(signatures) >= len(ALL_STYLES) - 1


PROGRESSIONS = [
    None,
    ("C", "Am", "F", "G"),
    ("Dm7", "G9", "Cmaj7", "A7sus4"),
    ("Bdim", "Caug", "G/B", "Am/G", "F#ø"),
]


@pytest.mark.parametrize("style", ALL_STYLES)
@pytest.mark.parametrize("progression", PROGRESSIONS)
def test_bass_plays_the_chords_bass_note_on_every_downbeat(style, progression):
    plan = _plan(style, progression=progression)
    notes = compose_part(plan, "bass").notes
    for bar in range(plan.bars):
        chord = plan.chord_at(bar)
        downbeat = [n for n in notes if abs(n.start - bar * plan.bar_seconds) < 0.005]
        assert downbeat, f"no bass note on bar {bar}"
        assert all(n.pitch % 12 in chord_pitch_set(chord) for n in downbeat)


@pytest.mark.parametrize("style", ALL_STYLES)
@pytest.mark.parametrize("stem", ["piano", "synth", "guitar"])
def test_chord_instruments_play_only_chord_tones(style, stem):
    plan = _plan(style, progression=("Cmaj7", "Am9", "Dm7", "G7sus4", "E7#9", "Bb/D"))
    for note in compose_part(plan, stem).notes:
        bar = min(plan.bars - 1, int((note.start + 0.06) // plan.bar_seconds))
        # An anticipation plays the next bar's chord on the last eighth of this one.
        anticipated = note.start + 0.06 >= (bar + 1) * plan.bar_seconds - plan.beat_seconds / 2
        allowed = chord_pitch_set(plan.chord_at(bar)) | (
            chord_pitch_set(plan.chord_at(bar + 1)) if anticipated else frozenset()
        )
        assert note.pitch % 12 in allowed, (bar, note)


@pytest.mark.parametrize("style", ["pop", "jazz", "rock", "lo-fi", "house"])
def test_vocals_sing_chord_tones_on_strong_beats_and_breathe(style):
    plan = _plan(style, seconds=60.0)
    notes = compose_part(plan, "vocals").sorted_notes()
    strong = [
        n
        for n in notes
        if abs((n.start / plan.beat_seconds) % 2) < 0.05 or abs((n.start / plan.beat_seconds) % 2 - 2) < 0.05
    ]
    assert strong
    on_chord = [
        n.pitch % 12 in chord_pitch_set(plan.chord_at(int((n.start + 0.05) // plan.bar_seconds)))
        for n in strong
    ]
    assert np.mean(on_chord) >= 0.95
    gaps = [b.start - (a.start + a.duration) for a, b in itertools.pairwise(notes)]
    assert sum(g >= plan.beat_seconds for g in gaps) >= len(notes) / 12  # phrases end in rests
    assert max(n.pitch for n in notes) - min(n.pitch for n in notes) <= 19  # a singable range
    intro = plan.sections[0]
    assert all(n.start >= intro.end_bar * plan.bar_seconds - 0.05 for n in notes)  # the intro is instrumental


@pytest.mark.parametrize("stem", STEM_TYPES)
def test_temperature_adds_variations(stem):
    plain = compose_part(_plan(temperature=0.0, seconds=60.0), stem)
    wild = compose_part(_plan(temperature=2.0, seconds=60.0), stem)
    assert plain.variations == 0
    if stem not in ("synth", "other"):  # pads and strings sustain: nothing to vary
        assert wild.variations > 3


@pytest.mark.parametrize("stem", STEM_TYPES)
def test_same_seed_same_notes_and_another_seed_another_take(stem):
    first = compose_part(_plan(seed=11), stem).notes
    assert first == compose_part(_plan(seed=11), stem).notes
    if stem not in ("synth", "other"):
        assert first != compose_part(_plan(seed=12), stem).notes


@pytest.mark.parametrize("style", ALL_STYLES)
@pytest.mark.parametrize("stem", STEM_TYPES)
def test_every_note_is_valid_and_starts_inside_the_song(style, stem):
    plan = _plan(style, seconds=20.0)
    notes = compose_part(plan, stem).notes
    assert notes
    assert all(
        0 <= n.start < plan.duration_seconds
        and n.duration > 0
        and 0 < n.velocity <= 127
        and 0 <= n.pitch <= 127
        for n in notes
    )


def test_a_waltz_has_three_beats_a_bar():
    plan = _plan(prompt="a gentle waltz", seconds=20.0)
    kicks = [n.start for n in compose_part(plan, "drums").notes if n.pitch == KICK]
    assert plan.beats_per_bar == 3
    assert any(abs(k - 3 * plan.beat_seconds) < 0.02 for k in kicks)
