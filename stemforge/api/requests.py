"""From a validated request to what the graph needs: limits, resolved defaults, the seed."""

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from stemforge.api.schemas import GenerateRequest
from stemforge.errors import InvalidRequest
from stemforge.music.spec import MusicSpec
from stemforge.routing import EngineLimits
from stemforge.settings import Settings

DEFAULT_BPM = 120.0
DEFAULT_DURATION_SECONDS = 30.0
DEFAULT_TEMPERATURE = 1.0


def check_limits(
    request: GenerateRequest,
    settings: Settings,
    routes: Mapping[str, Sequence[str]] | None = None,
    limits: Mapping[str, EngineLimits] | None = None,
) -> None:
    """Rules that depend on this deployment (settings, per-engine limits) rather than the schema."""
    duration = request.parameters.duration_seconds
    if duration is not None and duration > settings.max_duration_seconds:
        raise InvalidRequest(
            "parameters.duration_seconds",
            f"must be greater than 0 and at most {settings.max_duration_seconds:g} seconds "
            f"on this deployment (MAX_DURATION_SECONDS); got {duration:g}",
        )
    for engine, stems in (routes or {}).items():
        limit = (limits or {}).get(engine)
        if limit is None:
            continue
        if limit.max_stems is not None and len(stems) > limit.max_stems:
            raise InvalidRequest(
                "target_stems",
                f"at most {limit.max_stems} stems per request for the {engine} engine; got {len(stems)}",
            )
        if (
            duration is not None
            and limit.max_duration_seconds is not None
            and duration > limit.max_duration_seconds
        ):
            raise InvalidRequest(
                "parameters.duration_seconds",
                f"at most {limit.max_duration_seconds:g} seconds for stems rendered by the {engine} engine; "
                f"got {duration:g}",
            )


def resolve_spec(request: GenerateRequest) -> MusicSpec:
    """Fill every default; a missing seed becomes a random one that is reported back."""
    p = request.parameters
    return MusicSpec(
        bpm=p.target_bpm if p.target_bpm is not None else DEFAULT_BPM,
        duration_seconds=p.duration_seconds if p.duration_seconds is not None else DEFAULT_DURATION_SECONDS,
        seed=p.random_seed if p.random_seed is not None else secrets.randbelow(2**32),
        temperature=p.temperature if p.temperature is not None else DEFAULT_TEMPERATURE,
        style=_blank_to_none(p.style),
        prompt=_blank_to_none(p.prompt),
        chord_progression=tuple(p.chord_progression) if p.chord_progression else None,
    )


def _blank_to_none(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def applied_parameters(spec: MusicSpec) -> dict[str, Any]:
    """The callback's ``parameters``: the seed's field names, with what was actually used."""
    return {
        "target_bpm": spec.bpm,
        "duration_seconds": spec.duration_seconds,
        "style": spec.style,
        "chord_progression": list(spec.chord_progression) if spec.chord_progression else None,
        "prompt": spec.prompt,
        "temperature": spec.temperature,
        "random_seed": spec.seed,
    }
