import json

import pytest

from stemforge.music.plan import build_plan
from stemforge.music.spec import MusicSpec


def _spec(**kw):
    base = {"bpm": 120.0, "duration_seconds": 30.0, "seed": 1}
    return MusicSpec(**{**base, **kw})


@pytest.mark.parametrize("bpm", [40.0, 60.0, 97.0, 120.0, 200.0, 240.0])
@pytest.mark.parametrize("duration", [3.0, 8.0, 30.0, 61.3])
def test_the_ending_bar_starts_before_the_end_with_room_to_ring(bpm, duration):
    plan = build_plan(_spec(bpm=bpm, duration_seconds=duration))
    ending_start = plan.ending_bar * plan.bar_seconds
    assert ending_start < duration
    if duration > 2 * plan.bar_seconds:
        assert duration - ending_start >= plan.beat_seconds * 0.999
        assert duration - ending_start < plan.bar_seconds + plan.beat_seconds
    assert plan.sections[0].start_bar == 0
    assert sum(s.bars for s in plan.sections) == max(1, plan.ending_bar)


def test_the_requested_progression_is_cycled_one_chord_a_bar():
    plan = build_plan(_spec(chord_progression=("C", "G/B", "Am7", "Fmaj7", "Gsus4")))
    assert [c.symbol for c in plan.chords[:7]] == ["C", "G/B", "Am7", "Fmaj7", "Gsus4", "C", "G/B"]
    assert plan.progression_source == "request"


def test_longer_songs_have_intro_verse_and_chorus():
    plan = build_plan(_spec(duration_seconds=120.0))
    names = [s.name for s in plan.sections]
    assert names[0] == "intro" and "verse" in names and "chorus" in names
    assert max(s.energy for s in plan.sections if s.name == "chorus") > max(
        s.energy for s in plan.sections if s.name == "verse"
    )


@pytest.mark.parametrize(
    ("style", "prompt", "expected"),
    [
        ("Hip Hop", None, "hip-hop"),
        ("lofi", None, "lo-fi"),
        (None, "a heavy metal riff", "metal"),
        ("polka-tronic", None, "pop"),
        (None, None, "pop"),
        ("deep house", None, "house"),
    ],
)
def test_style_is_resolved_from_the_style_or_the_prompt(style, prompt, expected):
    plan = build_plan(_spec(style=style, prompt=prompt))
    assert plan.style.name == expected
    assert plan.progression_source == "style default"


def test_default_progressions_depend_on_the_seed_and_are_repeatable():
    progressions = {build_plan(_spec(style="pop", seed=s)).progression for s in range(12)}
    assert len(progressions) > 1
    assert build_plan(_spec(seed=3)).to_dict() == build_plan(_spec(seed=3)).to_dict()


def test_swing_delays_offbeats_only():
    plan = build_plan(_spec(style="jazz"))
    assert plan.time_at(1, 0.0) == pytest.approx(plan.bar_seconds)
    assert plan.time_at(0, 1.0) == pytest.approx(plan.beat_seconds)
    assert plan.time_at(0, 0.5) > 0.5 * plan.beat_seconds * 1.2


@pytest.mark.parametrize(
    ("prompt", "check"),
    [
        ("energetic and driving", lambda p, base: p.feel.energy > base.feel.energy),
        ("mellow, sparse", lambda p, base: p.feel.energy < base.feel.energy and p.feel.density < 1),
        ("a waltz", lambda p, base: p.beats_per_bar == 3),
        ("distorted guitars", lambda p, base: p.feel.distortion >= 0.8),
        ("with rhodes and strings", lambda p, base: {"piano", "other"} <= set(p.feel.instruments)),
    ],
)
def test_prompt_words_steer_the_feel(prompt, check):
    assert check(build_plan(_spec(prompt=prompt)), build_plan(_spec()))


def test_the_plan_is_json():
    data = json.loads(json.dumps(build_plan(_spec(chord_progression=("Am", "F"))).to_dict()))
    assert data["chords"][1]["symbol"] == "F" and data["time_signature"] == "4/4"
