"""Phrasing, octave placement, breaths and the stretching of a syllable's frames (no voice needed)."""

import numpy as np
import pytest

from stemforge.dsp.singing.breath import BREATH_MAX_S, breath, breath_window
from stemforge.dsp.singing.line import (
    VOICE_HIGH,
    VOICE_LOW,
    allowed_pitch_classes,
    octave_shift,
    place,
    split_phrases,
    widen,
)
from stemforge.dsp.singing.voice import band_pitches
from stemforge.dsp.singing.world import stretch_indices
from stemforge.music.notes import Note
from stemforge.music.parts import compose_part
from stemforge.music.plan import build_plan
from stemforge.music.spec import MusicSpec


def test_phrases_break_at_rests_of_half_a_beat():
    beat = 0.5
    notes = [Note(0.0, 0.46, 64, 80), Note(0.5, 0.46, 65, 80), Note(1.5, 0.4, 67, 80), Note(1.9, 0.5, 69, 80)]
    phrases = split_phrases(notes, beat)
    assert [[n.pitch for n in p] for p in phrases] == [[64, 65], [67, 69]]
    # An overlapping note (a chord tone, a humanizing slip) is dropped: one voice sings one note.
    assert [len(p) for p in split_phrases([*notes, Note(0.2, 0.2, 60, 80)], beat)] == [2, 2]


def test_the_line_moves_by_octaves_above_the_band_within_the_voice():
    band = [60, 64, 67, 72, 62, 65, 69]  # median 65
    assert octave_shift([57, 60, 62, 64, 59], band) == 12  # under the band: up an octave
    assert octave_shift([67, 69, 71, 72, 74], band) == 0  # already above it
    assert octave_shift([79, 81, 84, 86], band) == -12  # too high to sing
    for line in ([48, 50, 52, 55], [60, 62, 64, 67, 69, 71], [72, 74, 76, 79]):
        shift = octave_shift(line, band)
        assert shift % 12 == 0
        assert min(line) + shift >= VOICE_LOW and max(line) + shift <= VOICE_HIGH
    assert octave_shift([], band) == 0


def test_a_breath_fills_most_of_a_rest_and_ends_before_the_phrase():
    assert breath_window(1.0, 1.1) is None
    start, end = breath_window(1.0, 2.0)
    assert end == pytest.approx(1.96) and end - start == pytest.approx(BREATH_MAX_S)
    start, end = breath_window(1.0, 1.4)
    assert end - start == pytest.approx(0.24)


def test_a_breath_is_soft_edged_band_limited_noise():
    rng = np.random.default_rng(3)
    x = breath(0.3, 44_100, rng)
    assert x.size == round(0.3 * 44_100)
    assert abs(x[0]) < 1e-3 and abs(x[-1]) < 0.05
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    hz = np.fft.rfftfreq(x.size, 1 / 44_100)
    share = spectrum[(hz > 600) & (hz < 7000)].sum() / spectrum.sum()
    assert share > 0.85
    assert np.array_equal(x, breath(0.3, 44_100, np.random.default_rng(3)))


def test_the_vowel_is_stretched_and_the_consonants_keep_their_speed():
    steady, length = (10, 30), 50  # 10 frames of onset, 20 of vowel, 20 of coda
    indices = stretch_indices(200, steady, length)
    assert indices.size == 200 and np.all(np.diff(indices) >= 0)
    assert indices[0] == 0.0 and indices[-1] == pytest.approx(length - 1)
    assert np.count_nonzero(indices < 10) == 10  # the onset at its own speed
    assert np.count_nonzero(indices > 29) == 20  # and the coda
    assert np.count_nonzero((indices >= 10) & (indices <= 29)) == 170


def test_a_short_note_squeezes_the_consonants_but_keeps_a_vowel():
    indices = stretch_indices(20, (10, 30), 50)
    assert indices.size == 20
    onset, coda = np.count_nonzero(indices < 10), np.count_nonzero(indices > 29)
    assert onset + coda <= 12 and onset >= 3 and coda >= 3
    assert stretch_indices(1, (10, 30), 50).size == 1
    assert stretch_indices(0, (10, 30), 50).size == 0


def _plan(seed: int = 5, style: str = "jazz"):
    return build_plan(MusicSpec(bpm=100.0, duration_seconds=30.0, seed=seed, style=style))


@pytest.mark.parametrize(
    ("style", "seed"), [("jazz", 3), ("hip-hop", 3), ("ballad", 4), ("rock", 5), ("pop", 1)]
)
def test_a_narrow_line_is_widened_to_about_an_octave_on_allowed_pitches_and_placed_above_the_band(
    style, seed
):
    plan = _plan(seed, style)
    notes = compose_part(plan, "vocals").sorted_notes()
    band = band_pitches(plan)
    sung, shift = place(notes, plan, band)
    pitches = [n.pitch for n in sung]
    assert 8 <= max(pitches) - min(pitches) <= 17
    assert np.median(pitches) >= np.median(band) + 2
    assert min(pitches) >= VOICE_LOW and max(pitches) <= VOICE_HIGH and shift % 12 == 0
    assert [(n.start, n.duration) for n in sung] == [(n.start, n.duration) for n in notes]  # rhythm kept
    for before, note in zip(notes, sung, strict=True):
        if (note.pitch - before.pitch) % 12:  # moved by more than octaves: on an allowed pitch
            assert note.pitch % 12 in allowed_pitch_classes(plan, before)


def test_a_line_of_an_octave_only_moves_by_octaves():
    plan = _plan()
    notes = [Note(i * 0.5, 0.45, p, 80) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    sung, shift = place(notes, plan, [55, 60, 64])
    assert [n.pitch for n in sung] == [n.pitch + shift for n in notes]
    assert widen(notes, plan, 1.0) == notes
