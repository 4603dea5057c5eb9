"""From a validated request to what the graph needs: limits, resolved defaults, the seed."""

import secrets
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from stemforge.api.schemas import GenerateRequest
from stemforge.engines.registry import engine_class
from stemforge.errors import InvalidRequest
from stemforge.music.spec import MusicSpec
from stemforge.routing import RoutingTable
from stemforge.settings import Settings

DEFAULT_BPM = 120.0
DEFAULT_DURATION_SECONDS = 30.0
DEFAULT_TEMPERATURE = 1.0


def check_limits(request: GenerateRequest, settings: Settings) -> None:
    """Rules that depend on this deployment's settings rather than the schema."""
    duration = request.parameters.duration_seconds
    if duration is not None and duration > settings.max_duration_seconds:
        raise InvalidRequest(
            "parameters.duration_seconds",
            f"must be greater than 0 and at most {settings.max_duration_seconds:g} seconds "
            f"on this deployment (MAX_DURATION_SECONDS); got {duration:g}",
        )


def route_request(
    request: GenerateRequest, routing: RoutingTable, mode: str, deployed: Collection[str]
) -> dict[str, tuple[str, ...]]:
    """Which engine renders which of the request's stems: the routing table's choice, or the
    request's own ``parameters.engines``, which may only name deployed engines, for stems the
    request asks for and the engine can make."""
    stems = tuple(stem.value for stem in request.target_stems)
    overrides = {stem.value: engine for stem, engine in (request.parameters.engines or {}).items()}
    available = ", ".join(sorted(deployed))
    problems = []
    for stem, engine in overrides.items():
        name = f"parameters.engines.{stem}"
        if stem not in stems:
            problems.append((name, f"stem {stem!r} is not in target_stems {list(stems)}"))
        elif engine not in deployed:
            problems.append((name, f"engine {engine!r} is not deployed here; deployed engines: {available}"))
        elif stem not in engine_class(engine).stem_types:
            makes = ", ".join(engine_class(engine).stem_types)
            problems.append((name, f"engine {engine!r} cannot make {stem!r} stems; it makes: {makes}"))
    if problems:
        raise InvalidRequest(*problems[0], *problems[1:])
    return routing.route(mode, stems, overrides)


def check_engines(spec: MusicSpec, routes: Mapping[str, Sequence[str]]) -> None:
    """Each engine's own rules for the stems routed to it, before the job is accepted: a request
    an engine would refuse is a 422 naming the field and the limit, never a failed callback."""
    refusals = [
        refusal for engine, stems in routes.items() for refusal in engine_class(engine).check(spec, stems)
    ]
    if refusals:
        first, *more = refusals
        raise InvalidRequest(first.field, first.message, *((r.field, r.message) for r in more))


def resolve_spec(request: GenerateRequest, engines: int = 1) -> MusicSpec:
    """Fill every default; a missing seed becomes a random one that is reported back. Stems from
    more than one engine (``engines``) are lined up on the tempo grid by every model engine."""
    p = request.parameters
    return MusicSpec(
        bpm=p.target_bpm if p.target_bpm is not None else DEFAULT_BPM,
        duration_seconds=p.duration_seconds if p.duration_seconds is not None else DEFAULT_DURATION_SECONDS,
        seed=p.random_seed if p.random_seed is not None else secrets.randbelow(2**32),
        temperature=p.temperature if p.temperature is not None else DEFAULT_TEMPERATURE,
        style=_blank_to_none(p.style),
        prompt=_blank_to_none(p.prompt),
        chord_progression=tuple(p.chord_progression) if p.chord_progression else None,
        time_signature=p.time_signature,
        lyrics=_blank_to_none(p.lyrics),
        align_to_grid=engines > 1,
    )


def _blank_to_none(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def applied_parameters(spec: MusicSpec, routes: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """The callback's ``parameters``: the seed's field names, with what was actually used, and
    (additive) the engine each stem went to."""
    engines = {stem: engine for engine, stems in (routes or {}).items() for stem in stems}
    return {
        "target_bpm": spec.bpm,
        "duration_seconds": spec.duration_seconds,
        "style": spec.style,
        "chord_progression": list(spec.chord_progression) if spec.chord_progression else None,
        "prompt": spec.prompt,
        "temperature": spec.temperature,
        "random_seed": spec.seed,
        **({"time_signature": spec.time_signature} if spec.time_signature else {}),
        **({"lyrics": spec.lyrics} if spec.lyrics else {}),
        **({"engines": engines} if engines else {}),
    }
