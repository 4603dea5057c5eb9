"""Prompt building: pure, no torch."""

import pytest

from stemforge.engines.prompting import (
    DEFAULT_PROGRESSION,
    STEM_INSTRUMENTS,
    build_prompt,
    format_bpm,
    negative_prompt,
    resolve_request,
)
from stemforge.errors import InvalidRequest
from stemforge.music.spec import STEM_TYPES, MusicSpec


def _spec(**changes: object) -> MusicSpec:
    values: dict[str, object] = {"bpm": 120.0, "duration_seconds": 10.0, "seed": 1}
    values.update(changes)
    return MusicSpec(**values)  # type: ignore[arg-type]


def test_every_stem_type_has_a_solo_description() -> None:
    assert set(STEM_INSTRUMENTS) == set(STEM_TYPES)
    for instrument, description in STEM_INSTRUMENTS.values():
        assert "solo" in description
        assert instrument


def test_prompt_carries_instrument_style_prompt_tempo_key_and_chords() -> None:
    spec = _spec(
        bpm=92.0, style="lo-fi hip hop", prompt="warm and dusty.", chord_progression=("Dm7", "G7", "Cmaj7")
    )
    prompt = build_prompt(spec, "piano", resolve_request(spec))
    assert prompt.startswith("lo-fi hip hop solo piano part")
    assert "warm and dusty" in prompt and "dusty.." not in prompt
    for fact in (
        "genre: lo-fi hip hop",
        "instrument: piano",
        "bpm: 92",
        "key: D minor",
        "chords: Dm7 G7 Cmaj7",
    ):
        assert fact in prompt


def test_prompts_of_one_request_differ_only_by_instrument() -> None:
    spec = _spec(style="rock")
    request = resolve_request(spec)
    drums, bass = build_prompt(spec, "drums", request), build_prompt(spec, "bass", request)
    assert drums != bass
    assert drums.split("instrument:")[1].split(".", 1)[1] == bass.split("instrument:")[1].split(".", 1)[1]


def test_defaults_without_style_prompt_or_chords() -> None:
    spec = _spec()
    request = resolve_request(spec)
    assert request.chord_progression == DEFAULT_PROGRESSION
    assert request.key == "C major"
    prompt = build_prompt(spec, "drums", request)
    assert "genre:" not in prompt
    assert prompt.startswith("solo drum kit")


@pytest.mark.parametrize(
    ("progression", "key"),
    [
        (("Bbmaj7", "F"), "Bb major"),
        (("F#m", "D"), "F# minor"),
        (("G/B", "C"), "G major"),
        (("Am",), "A minor"),
    ],
)
def test_key_comes_from_the_first_chord(progression: tuple[str, ...], key: str) -> None:
    assert resolve_request(_spec(chord_progression=progression)).key == key


def test_bad_chord_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="chord_progression"):
        resolve_request(_spec(chord_progression=("C", "Xyz")))


def test_unknown_stem_is_an_invalid_request() -> None:
    spec = _spec()
    with pytest.raises(InvalidRequest, match="kazoo"):
        build_prompt(spec, "kazoo", resolve_request(spec))


def test_bpm_formatting() -> None:
    assert format_bpm(120.0) == "120"
    assert format_bpm(119.98) == "120"
    assert format_bpm(97.5) == "97.5"


@pytest.mark.parametrize("stem", STEM_TYPES)
def test_negative_prompt_names_every_other_instrument_and_never_the_stem_itself(stem: str) -> None:
    negative = negative_prompt(stem)
    own = STEM_INSTRUMENTS[stem][0]
    assert own not in negative.split(", ")
    for other, (instrument, _) in STEM_INSTRUMENTS.items():
        if other != stem:
            assert instrument in negative.split(", ")
    assert ("vocals" in negative) == (stem != "vocals")
    assert "low quality" in negative


def test_prompt_carries_the_tempo_as_both_models_were_trained_on_it() -> None:
    prompt = build_prompt(_spec(bpm=128.0), "drums", resolve_request(_spec(bpm=128.0)))
    assert "128 BPM" in prompt and "bpm: 128" in prompt


def test_a_requested_metre_is_in_the_prompt_and_none_is_not() -> None:
    waltz = _spec(time_signature="3/4")
    assert "time signature: 3/4" in build_prompt(waltz, "piano", resolve_request(waltz))
    assert "time signature" not in build_prompt(_spec(), "piano", resolve_request(_spec()))
