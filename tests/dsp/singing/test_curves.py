"""The singer's pitch and articulation curves (pure numpy, no voice needed)."""

import numpy as np
import pytest

from stemforge.dsp.singing.curves import (
    SCOOP_S,
    SCOOP_SEMITONES,
    VIBRATO_MIN_NOTE_S,
    glide_seconds,
    pitch_curve,
    portamento,
    rearticulation_gain,
    vibrato,
)
from stemforge.music.notes import Note

FRAME = 0.001


def _times(start: float, end: float) -> np.ndarray:
    return np.arange(start, end, FRAME)


def test_vibrato_waits_then_grows_to_its_depth_at_its_rate():
    t = _times(0.0, 2.0)
    cents = vibrato(t, 2.0, rate_hz=5.5, depth_cents=40.0, delay_s=0.2, ramp_s=0.25)
    assert np.all(cents[t < 0.2] == 0.0)
    held = cents[t >= 0.5]
    assert np.max(np.abs(held)) == pytest.approx(40.0, abs=0.5)
    # Rate from upward zero crossings of the held part.
    crossings = np.flatnonzero((held[:-1] < 0) & (held[1:] >= 0))
    rate = (len(crossings) - 1) / ((crossings[-1] - crossings[0]) * FRAME)
    assert rate == pytest.approx(5.5, rel=0.02)
    # Growing in: the first cycle after the delay is smaller than the held depth.
    assert np.max(np.abs(cents[(t > 0.2) & (t < 0.3)])) < 0.7 * 40.0


def test_short_notes_are_sung_straight_and_the_delay_shrinks_on_shortish_notes():
    assert not vibrato(_times(0.0, 0.3), VIBRATO_MIN_NOTE_S - 0.01).any()
    t = _times(0.0, 0.45)
    cents = vibrato(t, 0.45, delay_s=0.3)
    assert cents[t > 0.16].any() and not cents[t < 0.15].any()  # a third of the note, not 0.3 s


def test_portamento_slides_smoothly_and_mostly_before_the_new_note():
    at, glide = 1.0, 0.1
    t = _times(0.8, 1.2)
    curve = portamento(t, 60.0, 64.0, at, glide)
    assert curve[0] == 60.0 and curve[-1] == 64.0
    assert np.all(np.diff(curve) >= -1e-12)
    before = curve[np.searchsorted(t, at)]
    assert 62.0 < before < 64.0  # past half-way when the new note begins (70 % of the glide before)
    moving = t[(curve > 60.0) & (curve < 64.0)]
    assert moving[0] == pytest.approx(at - 0.07, abs=0.002) and moving[-1] == pytest.approx(
        at + 0.03, abs=0.002
    )


def test_glides_scale_with_the_notes_within_limits():
    assert glide_seconds(Note(0, 0.1, 60, 80), Note(0.1, 1.0, 62, 80)) == pytest.approx(0.04)
    assert glide_seconds(Note(0, 0.3, 60, 80), Note(0.3, 1.0, 62, 80)) == pytest.approx(0.075)
    assert glide_seconds(Note(0, 2.0, 60, 80), Note(2.0, 2.0, 62, 80)) == pytest.approx(0.12)


def test_pitch_curve_follows_the_notes_and_glides_between_different_pitches_only():
    notes = [Note(0.0, 0.5, 60, 80), Note(0.5, 0.5, 62, 80), Note(1.0, 0.5, 62, 80), Note(1.5, 0.5, 67, 80)]
    t = _times(0.0, 2.0)
    curve = pitch_curve(notes, t, expressive=False)
    for note in notes:
        middle = (t > note.start + 0.1) & (t < note.start + note.duration - 0.1)
        assert np.allclose(curve[middle], note.pitch)
    # A slide into 62 and into 67, none between the two 62s.
    assert np.any((curve > 60.1) & (curve < 61.9)) and np.any((curve > 62.1) & (curve < 66.9))
    around = (t > 0.95) & (t < 1.05)
    assert np.all(curve[around] == 62.0)


def test_expressive_pitch_curve_scoops_into_the_phrase_and_stays_near_the_notes():
    notes = [Note(0.5, 1.5, 69, 80), Note(2.0, 1.5, 72, 80)]
    t = _times(0.3, 3.5)
    curve = pitch_curve(notes, t, np.random.default_rng(1))
    assert curve[0] == pytest.approx(69 - SCOOP_SEMITONES, abs=0.1)  # under the note before it
    assert abs(curve[np.searchsorted(t, 0.5 + SCOOP_S + 0.01)] - 69) < 0.15
    for note in notes:
        inside = (t > note.start + 0.1) & (t < note.start + note.duration - 0.15)
        assert abs(np.median(curve[inside]) - note.pitch) < 0.1
        assert 0.2 < np.max(np.abs(curve[inside] - note.pitch)) < 0.6  # vibrato of +-40 cents (and drift)


def test_same_seed_same_curve():
    notes = [Note(0.0, 1.0, 64, 80), Note(1.0, 1.0, 66, 80)]
    t = _times(0.0, 2.0)
    a = pitch_curve(notes, t, np.random.default_rng(5))
    assert np.array_equal(a, pitch_curve(notes, t, np.random.default_rng(5)))
    assert not np.array_equal(a, pitch_curve(notes, t, np.random.default_rng(6)))


def test_repeated_pitches_get_a_dip_and_a_deeper_one_without_a_consonant():
    notes = [Note(0.0, 0.5, 64, 80), Note(0.5, 0.5, 64, 80), Note(1.0, 0.5, 67, 80), Note(1.5, 0.5, 67, 80)]
    t = _times(0.0, 2.0)
    gain = rearticulation_gain(notes, t, soft=[False, False, False, True])
    db = 20 * np.log10(gain)
    assert db[np.searchsorted(t, 0.492)] == pytest.approx(-16.0, abs=0.5)
    assert db[np.searchsorted(t, 1.492)] == pytest.approx(-24.0, abs=0.5)
    assert np.all(db[(t > 0.9) & (t < 1.1)] > -0.01)  # 64 to 67 is a new note anyway
    assert np.all(db[(t > 0.1) & (t < 0.4)] > -0.01)
