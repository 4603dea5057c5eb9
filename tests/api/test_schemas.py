"""Request validation without a server: each bad input names its field and what is allowed."""

import pytest
from pydantic import ValidationError

from stemforge.api.errors import field_name
from stemforge.api.schemas import GenerateRequest

VALID = {
    "generation_request_id": "gen-123e4567-e89b-12d3-a456-426614174000",
    "audio_file_id": "aud-123e4567-e89b-12d3-a456-426614174000",
    "target_stems": ["guitar", "bass", "drums"],
    "parameters": {
        "target_bpm": 120.0,
        "duration_seconds": 30.0,
        "style": "rock",
        "chord_progression": ["C", "G", "Am", "F"],
        "prompt": "energetic rock guitar with distortion",
        "temperature": 1.0,
        "random_seed": 42,
    },
    "callback_url": "http://api:8080/api/generation/callback",
}


def _errors(**changes: object) -> dict[str, str]:
    body = {**VALID, **changes}
    with pytest.raises(ValidationError) as info:
        GenerateRequest.model_validate(body)
    return {field_name(e["loc"]): e["msg"] for e in info.value.errors()}


def _with_parameters(**changes: object) -> dict:
    return {**VALID["parameters"], **changes}  # type: ignore[dict-item]


def test_the_seed_example_is_valid() -> None:
    request = GenerateRequest.model_validate(VALID)

    assert [s.value for s in request.target_stems] == ["guitar", "bass", "drums"]
    assert request.parameters.chord_progression == ["C", "G", "Am", "F"]


def test_nulls_from_the_dotnet_client_are_accepted() -> None:
    params = dict.fromkeys(VALID["parameters"])  # type: ignore[arg-type]
    request = GenerateRequest.model_validate({**VALID, "parameters": params, "callback_url": None})

    assert request.parameters.target_bpm is None
    assert request.callback_url is None


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"target_stems": ["kazoo"]}, "target_stems[0]", "'vocals', 'drums', 'bass'"),
        ({"target_stems": []}, "target_stems", "at least 1"),
        ({"target_stems": ["bass", "drums", "bass"]}, "target_stems", "listed twice"),
        (
            {"parameters": _with_parameters(target_bpm=39.9)},
            "parameters.target_bpm",
            "greater than or equal to 40",
        ),
        (
            {"parameters": _with_parameters(target_bpm=240.1)},
            "parameters.target_bpm",
            "less than or equal to 240",
        ),
        (
            {"parameters": _with_parameters(duration_seconds=0)},
            "parameters.duration_seconds",
            "greater than or equal to 0.5",
        ),
        (
            {"parameters": _with_parameters(duration_seconds=-3)},
            "parameters.duration_seconds",
            "greater than or equal to 0.5",
        ),
        (
            {"parameters": _with_parameters(duration_seconds=1e-9)},  # used to "complete" with empty WAVs
            "parameters.duration_seconds",
            "greater than or equal to 0.5",
        ),
        (
            {"parameters": _with_parameters(duration_seconds=True)},
            "parameters.duration_seconds",
            "valid number",
        ),
        ({"parameters": _with_parameters(target_bpm="120")}, "parameters.target_bpm", "valid number"),
        ({"parameters": _with_parameters(random_seed=5.0)}, "parameters.random_seed", "valid integer"),
        ({"generation_request_id": "gen-x\n"}, "generation_request_id", "1-128"),
        ({"audio_file_id": "aud-1\n"}, "audio_file_id", "1-128"),
        (
            {"parameters": _with_parameters(temperature=-0.1)},
            "parameters.temperature",
            "greater than or equal to 0",
        ),
        (
            {"parameters": _with_parameters(temperature=2.01)},
            "parameters.temperature",
            "less than or equal to 2",
        ),
        (
            {"parameters": _with_parameters(random_seed=-1)},
            "parameters.random_seed",
            "greater than or equal to 0",
        ),
        (
            {"parameters": _with_parameters(chord_progression=["C", "H7"])},
            "parameters.chord_progression[1]",
            "'H7'",
        ),
        (
            {"parameters": _with_parameters(chord_progression=["Cmaj7", ""])},
            "parameters.chord_progression[1]",
            "empty",
        ),
        ({"generation_request_id": ".."}, "generation_request_id", "no '..'"),
        ({"generation_request_id": "a/b"}, "generation_request_id", "no '/'"),
        ({"audio_file_id": "x" * 129}, "audio_file_id", "1-128"),
        ({"audio_file_id": ""}, "audio_file_id", "1-128"),
        ({"callback_url": "ftp://host/cb"}, "callback_url", "'http' or 'https'"),
        ({"callback_url": "not a url"}, "callback_url", "URL"),
    ],
)
def test_bad_input_names_the_field_and_what_is_allowed(changes: dict, field: str, allowed: str) -> None:
    errors = _errors(**changes)

    assert field in errors, errors
    assert allowed in errors[field]


@pytest.mark.parametrize(
    "symbol", ["C", "Am7", "G/B", "Bbmaj9", "F#m7b5", "Dsus4", "Edim7", "Caug", "Cadd9", "E7#9"]
)
def test_chords_beyond_triads_are_accepted(symbol: str) -> None:
    request = GenerateRequest.model_validate(
        {**VALID, "parameters": _with_parameters(chord_progression=[symbol])}
    )

    assert request.parameters.chord_progression == [symbol]


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(ValidationError) as info:
        GenerateRequest.model_validate({"target_stems": ["bass"]})

    assert {field_name(e["loc"]) for e in info.value.errors()} == {"generation_request_id", "audio_file_id"}
