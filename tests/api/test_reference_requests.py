"""A reference's facts fill what the request leaves out, never what it says; engines that cannot
use it refuse it before anything is fetched."""

from dataclasses import replace

import pytest

from stemforge.api.requests import check_engines, reference_kind, reference_parameters, resolve_spec
from stemforge.api.schemas import GenerateRequest
from stemforge.errors import InvalidRequest
from stemforge.reference.intake import ReferenceIntake

INTAKE = ReferenceIntake(
    mode="accompany",
    kind="audio",
    duration_seconds=42.5,
    bpm=97.04,
    first_downbeat_seconds=0.61,
    chords=("Am", "F", "C", "G"),
    time_signature=None,
    analysis={"source": "audio", "bpm": 97.04},
)


def _request(**parameters: object) -> GenerateRequest:
    return GenerateRequest.model_validate(
        {
            "generation_request_id": "g",
            "audio_file_id": "a",
            "target_stems": ["bass"],
            "parameters": {"reference_audio": "https://example.com/t.wav", **parameters},
        }
    )


def test_what_the_request_leaves_out_comes_from_the_reference() -> None:
    request = _request()
    spec = resolve_spec(request, reference=INTAKE, max_duration_seconds=300)

    assert (spec.bpm, spec.chord_progression, spec.duration_seconds) == (97.04, ("Am", "F", "C", "G"), 42.5)
    assert spec.reference is not None and spec.reference.offset_seconds == 0.61
    assert spec.align_to_grid  # model stems line up with the track
    extra = reference_parameters(request, INTAKE, spec)
    assert extra["reference_sources"] == {
        "target_bpm": "reference",
        "chord_progression": "reference",
        "duration_seconds": "reference",
        "time_signature": "default",
    }
    assert extra["reference_analysis"]["stems_start_seconds"] == 0.61


def test_fields_the_request_gives_win_over_the_reference() -> None:
    request = _request(target_bpm=120.0, chord_progression=["C", "G"], duration_seconds=10.0)
    spec = resolve_spec(request, reference=INTAKE, max_duration_seconds=300)

    assert (spec.bpm, spec.chord_progression, spec.duration_seconds) == (120.0, ("C", "G"), 10.0)
    sources = reference_parameters(request, INTAKE, spec)["reference_sources"]
    assert sources["target_bpm"] == sources["chord_progression"] == sources["duration_seconds"] == "request"


@pytest.mark.parametrize(
    ("mode", "offset", "duration"), [("accompany", 0.61, 42.5), ("style", 0.0, 42.5), ("continue", 0.0, 30.0)]
)
def test_each_mode_s_alignment_and_length(mode: str, offset: float, duration: float) -> None:
    spec = resolve_spec(_request(reference_mode=mode), reference=replace(INTAKE, mode=mode))

    assert spec.reference is not None and spec.reference.offset_seconds == offset
    assert spec.duration_seconds == duration
    assert spec.align_to_grid == (mode == "accompany")


def test_a_reference_longer_than_the_deployment_allows_gives_stems_of_the_longest_allowed() -> None:
    spec = resolve_spec(
        _request(), reference=replace(INTAKE, duration_seconds=900.0), max_duration_seconds=300
    )
    assert spec.duration_seconds == 300


def test_a_downbeat_at_the_very_end_leaves_nothing_to_accompany() -> None:
    with pytest.raises(InvalidRequest, match="too close to the end"):
        resolve_spec(_request(duration_seconds=5.0), reference=replace(INTAKE, first_downbeat_seconds=4.9))


@pytest.mark.parametrize(
    ("engine", "kind", "mode", "refused"),
    [
        ("procedural", "audio", "accompany", False),
        ("procedural", "midi", "style", False),
        ("procedural", "audio", "continue", True),
        ("musicgen", "audio", "continue", False),
        ("musicgen", "midi", "accompany", False),
        ("stable_audio", "audio", "style", True),
        ("audioldm2", "audio", "accompany", True),
        ("riffusion", "midi", "accompany", True),
    ],
)
def test_an_engine_that_cannot_use_the_reference_refuses_it_naming_the_field(
    engine: str, kind: str, mode: str, refused: bool
) -> None:
    field = "reference_audio" if kind == "audio" else "midi"
    parameters: dict[str, object] = {"reference_mode": mode}
    if kind == "midi":
        parameters = {**parameters, "midi": "https://example.com/song.mid"}
    request = GenerateRequest.model_validate(
        {
            "generation_request_id": "g",
            "audio_file_id": "a",
            "target_stems": ["bass"],
            "parameters": {
                **({"reference_audio": "https://example.com/t.wav"} if kind == "audio" else {}),
                **parameters,
            },
        }
    )
    spec = resolve_spec(request)
    if not refused:
        check_engines(spec, {engine: ("bass",)}, reference_kind(request.parameters))
        return
    with pytest.raises(InvalidRequest) as caught:
        check_engines(spec, {engine: ("bass",)}, reference_kind(request.parameters))
    assert caught.value.field == f"parameters.{field}"
    assert engine in caught.value.message and mode in caught.value.message
