"""From a validated request to what the graph needs: limits, resolved defaults, the seed."""

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from stemforge.api.schemas import (
    DURATION_CEILING_SECONDS,
    MIN_DURATION_SECONDS,
    GenerateRequest,
    GenerationParameters,
)
from stemforge.engines.registry import engine_class
from stemforge.errors import InvalidRequest
from stemforge.music.spec import MusicSpec, ReferenceSpec
from stemforge.reference.intake import ReferenceIntake
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


def reference_kind(parameters: GenerationParameters) -> tuple[str, str] | None:
    """The request's reference as (kind, mode), known before anything is fetched."""
    if parameters.reference_audio is None and parameters.midi is None:
        return None
    kind = "audio" if parameters.reference_audio is not None else "midi"
    return kind, parameters.reference_mode or "accompany"


def check_engines(
    spec: MusicSpec, routes: Mapping[str, Sequence[str]], reference: tuple[str, str] | None = None
) -> None:
    """Each engine's own rules for the stems routed to it, before the job is accepted: a request
    an engine would refuse is a 422 naming the field and the limit, never a failed callback.
    ``reference`` (kind, mode): check what the engines do with a reference not yet fetched."""
    if reference is not None and spec.reference is None:
        kind, mode = reference
        spec = replace(spec, reference=ReferenceSpec(mode=mode, kind=kind, duration_seconds=0.0))
    refusals = [
        refusal for engine, stems in routes.items() for refusal in engine_class(engine).check(spec, stems)
    ]
    if refusals:
        first, *more = refusals
        raise InvalidRequest(first.field, first.message, *((r.field, r.message) for r in more))


def resolve_spec(
    request: GenerateRequest,
    engines: int = 1,
    reference: ReferenceIntake | None = None,
    max_duration_seconds: float = DURATION_CEILING_SECONDS,
) -> MusicSpec:
    """Fill every default; a missing seed becomes a random one that is reported back. Stems from
    more than one engine (``engines``) are lined up on the tempo grid by every model engine.

    With a reference, what the request leaves out comes from it (``reference_sources`` says
    which): its tempo, chords and metre, and for accompany and style its length (at most
    ``max_duration_seconds``); an accompanied reference puts bar 1 on its first downbeat and
    every model stem on the grid."""
    p = request.parameters
    bpm = p.target_bpm if p.target_bpm is not None else (reference.bpm if reference else None)
    chords = tuple(p.chord_progression) if p.chord_progression else (reference.chords if reference else ())
    duration = p.duration_seconds
    if duration is None and reference is not None and reference.mode != "continue":
        duration = max(MIN_DURATION_SECONDS, min(reference.duration_seconds, max_duration_seconds))
    spec_reference = None
    if reference is not None:
        offset = (reference.first_downbeat_seconds or 0.0) if reference.mode == "accompany" else 0.0
        resolved_duration = duration if duration is not None else DEFAULT_DURATION_SECONDS
        if offset > resolved_duration - MIN_DURATION_SECONDS:
            field = "parameters.reference_audio" if reference.kind == "audio" else "parameters.midi"
            raise InvalidRequest(
                field,
                f"its first downbeat is at {offset:.2f} s, too close to the end of {resolved_duration:g} s "
                "of stems to play along with",
            )
        spec_reference = reference.spec(offset_seconds=round(offset, 4))
    return MusicSpec(
        bpm=round(bpm, 2) if bpm is not None else DEFAULT_BPM,
        duration_seconds=duration if duration is not None else DEFAULT_DURATION_SECONDS,
        seed=p.random_seed if p.random_seed is not None else secrets.randbelow(2**32),
        temperature=p.temperature if p.temperature is not None else DEFAULT_TEMPERATURE,
        style=_blank_to_none(p.style),
        prompt=_blank_to_none(p.prompt),
        chord_progression=chords or None,
        time_signature=p.time_signature or (reference.time_signature if reference else None),
        lyrics=_blank_to_none(p.lyrics),
        align_to_grid=engines > 1 or (reference is not None and reference.mode == "accompany"),
        reference=spec_reference,
    )


def reference_sources(request: GenerateRequest, reference: ReferenceIntake | None) -> dict[str, str] | None:
    """Where each field the reference can fill came from: ``request`` (given explicitly, which
    wins), ``reference`` (its analysis) or ``default``."""
    if reference is None:
        return None
    p = request.parameters
    from_reference = {
        "target_bpm": reference.bpm is not None,
        "chord_progression": bool(reference.chords),
        "duration_seconds": reference.mode != "continue",
        "time_signature": reference.time_signature is not None,
    }
    given = {
        "target_bpm": p.target_bpm is not None,
        "chord_progression": bool(p.chord_progression),
        "duration_seconds": p.duration_seconds is not None,
        "time_signature": p.time_signature is not None,
    }
    return {
        name: "request" if given[name] else ("reference" if from_reference[name] else "default")
        for name in given
    }


def _blank_to_none(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def reference_parameters(
    request: GenerateRequest, reference: ReferenceIntake, spec: MusicSpec
) -> dict[str, Any]:
    """The callback's account of the reference: how it was used, what was heard in it, and which
    of the request's fields came from it."""
    offset = spec.reference.offset_seconds if spec.reference else 0.0
    return {
        "reference_mode": reference.mode,
        "reference_analysis": {**reference.analysis, "stems_start_seconds": offset},
        "reference_sources": reference_sources(request, reference),
    }


def applied_parameters(
    spec: MusicSpec,
    routes: Mapping[str, Sequence[str]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The callback's ``parameters``: the seed's field names, with what was actually used, and
    (additive) the engine each stem went to and ``extra`` (the reference's account)."""
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
        **(extra or {}),
    }
