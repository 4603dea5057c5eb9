import pytest

from stemforge.api.requests import (
    applied_parameters,
    check_engines,
    check_limits,
    resolve_spec,
    route_request,
)
from stemforge.api.schemas import GenerateRequest
from stemforge.errors import InvalidRequest
from stemforge.routing import RoutingTable
from stemforge.settings import Settings


def _request(stems: tuple[str, ...] = ("bass",), **parameters: object) -> GenerateRequest:
    return GenerateRequest.model_validate(
        {
            "generation_request_id": "g",
            "audio_file_id": "a",
            "target_stems": list(stems),
            "parameters": parameters,
        }
    )


def test_defaults_fill_every_missing_parameter() -> None:
    spec = resolve_spec(_request())

    assert (spec.bpm, spec.duration_seconds, spec.temperature) == (120.0, 30.0, 1.0)
    assert spec.style is None and spec.prompt is None and spec.chord_progression is None
    assert 0 <= spec.seed < 2**32


def test_a_missing_seed_is_drawn_fresh_and_reported_back() -> None:
    seeds = {resolve_spec(_request()).seed for _ in range(20)}

    assert len(seeds) > 1
    spec = resolve_spec(_request())
    assert applied_parameters(spec)["random_seed"] == spec.seed


def test_given_values_are_kept_and_blank_text_becomes_none() -> None:
    spec = resolve_spec(
        _request(
            target_bpm=90, duration_seconds=12.5, temperature=0, random_seed=3, style="  ", prompt=" warm "
        )
    )

    assert (spec.bpm, spec.duration_seconds, spec.temperature, spec.seed) == (90, 12.5, 0, 3)
    assert spec.style is None
    assert spec.prompt == "warm"


@pytest.mark.parametrize(("limit", "duration", "ok"), [(60, 60, True), (60, 60.5, False), (300, 299, True)])
def test_duration_limit_comes_from_settings(limit: float, duration: float, ok: bool) -> None:
    settings = Settings(max_duration_seconds=limit)

    if ok:
        check_limits(_request(duration_seconds=duration), settings)
    else:
        with pytest.raises(InvalidRequest) as info:
            check_limits(_request(duration_seconds=duration), settings)
        assert info.value.field == "parameters.duration_seconds"
        assert f"at most {limit:g} seconds" in info.value.message


SLOW = "tests.support.engines:SlowEngine"  # at most 3 stems and 60 s


@pytest.mark.parametrize(
    ("routes", "duration", "fields"),
    [
        ({"procedural": ("bass",)}, 600, []),
        ({"procedural": ("bass",)}, 601, ["parameters.duration_seconds"]),
        ({"musicgen": ("bass", "drums")}, 300, []),
        ({"musicgen": ("bass",)}, 300.5, ["parameters.duration_seconds"]),
        ({SLOW: ("bass", "drums", "piano")}, 60, []),
        ({SLOW: ("bass", "drums", "piano", "synth")}, 61, ["target_stems", "parameters.duration_seconds"]),
        ({"procedural": ("bass",), SLOW: ("a", "b", "c", "d")}, 30, ["target_stems"]),
    ],
)
def test_each_engine_checks_its_own_limits_before_acceptance(
    routes: dict[str, tuple[str, ...]], duration: float, fields: list[str]
) -> None:
    spec = resolve_spec(_request(duration_seconds=duration))
    if not fields:
        check_engines(spec, routes)
        return
    with pytest.raises(InvalidRequest) as info:
        check_engines(spec, routes)
    assert [field for field, _ in info.value.problems] == fields
    for field, message in info.value.problems:
        assert field in info.value.message and message in info.value.message
        assert "engine" in message


ROUTING = RoutingTable.from_mapping(
    {"mock": {"default": "procedural"}, "ai": {"default": "musicgen", "stems": {"drums": "stable_audio"}}}
)
DEPLOYED = ("musicgen", "procedural", "stable_audio", "tests.support.engines:DrumsOnlyEngine")


@pytest.mark.parametrize(
    ("overrides", "routes"),
    [
        (None, {"stable_audio": ("drums",), "musicgen": ("bass", "piano")}),
        ({"drums": "musicgen"}, {"musicgen": ("drums", "bass", "piano")}),
        (
            {"bass": "stable_audio", "piano": "procedural"},
            {"stable_audio": ("drums", "bass"), "procedural": ("piano",)},
        ),
        (
            {"drums": "tests.support.engines:DrumsOnlyEngine"},
            {"tests.support.engines:DrumsOnlyEngine": ("drums",), "musicgen": ("bass", "piano")},
        ),
    ],
)
def test_a_request_may_route_its_stems_to_any_deployed_engine(overrides, routes) -> None:
    request = _request(("drums", "bass", "piano"), engines=overrides)
    assert route_request(request, ROUTING, "ai", DEPLOYED) == routes


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        (
            {"drums": "riffusion"},
            "parameters.engines.drums",
            ["'riffusion' is not deployed", "musicgen, procedural, stable_audio"],
        ),
        ({"vocals": "musicgen"}, "parameters.engines.vocals", ["not in target_stems"]),
        (
            {"bass": "tests.support.engines:DrumsOnlyEngine"},
            "parameters.engines.bass",
            ["cannot make 'bass'", "it makes: drums"],
        ),
    ],
)
def test_an_override_the_deployment_cannot_serve_is_refused_naming_the_stem(overrides, field, words) -> None:
    with pytest.raises(InvalidRequest) as refused:
        route_request(_request(("drums", "bass"), engines=overrides), ROUTING, "ai", DEPLOYED)
    assert refused.value.field == field
    for word in words:
        assert word in refused.value.message


def test_stems_from_several_engines_are_lined_up_on_the_grid() -> None:
    assert resolve_spec(_request(), engines=2).align_to_grid
    assert not resolve_spec(_request(), engines=1).align_to_grid


def test_the_callback_reports_the_engine_of_every_stem() -> None:
    spec = resolve_spec(_request())
    parameters = applied_parameters(spec, {"musicgen": ("bass",), "stable_audio": ("drums", "other")})
    assert parameters["engines"] == {"bass": "musicgen", "drums": "stable_audio", "other": "stable_audio"}
