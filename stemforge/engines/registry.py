"""Engines by name. An engine's module is imported when its class is first needed (the ingress
asks a class for its checks; a replica builds the engine), and the heavy libraries an engine needs
(torch, transformers) only when it is built, so the procedural engine never imports torch."""

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from stemforge.engines.base import Engine
from stemforge.errors import ConfigurationError
from stemforge.settings import Settings


@dataclass(frozen=True)
class EngineEntry:
    name: str  # what routing tables and requests use
    deployment_name: str  # the Ray Serve deployment that hosts it (serve_config.yaml)
    target: str  # "module:Class" of the engine
    extra: str | None  # pip extra that provides its heavy dependencies


ENGINES: dict[str, EngineEntry] = {
    entry.name: entry
    for entry in (
        EngineEntry("procedural", "ProceduralEngine", "stemforge.engines.procedural:ProceduralEngine", None),
        EngineEntry("musicgen", "MusicGenEngine", "stemforge.engines.musicgen:MusicGenEngine", "musicgen"),
        EngineEntry(
            "stable_audio",
            "StableAudioEngine",
            "stemforge.engines.stable_audio:StableAudioEngine",
            "stable-audio",
        ),
        EngineEntry(
            "audioldm2", "AudioLDM2Engine", "stemforge.engines.audioldm2:AudioLDM2Engine", "audioldm2"
        ),
        EngineEntry(
            "riffusion", "RiffusionEngine", "stemforge.engines.riffusion:RiffusionEngine", "riffusion"
        ),
    )
}


def engine_entry(name: str) -> EngineEntry:
    """A built-in engine by name, or your own as ``"package.module:ClassName"`` (deployed as
    ``ClassName``)."""
    if name in ENGINES:
        return ENGINES[name]
    module_name, _, class_name = name.partition(":")
    if module_name and class_name.isidentifier():
        return EngineEntry(name, class_name, name, None)
    raise ConfigurationError(
        f"unknown engine {name!r}; known engines: {sorted(ENGINES)}, or 'package.module:ClassName'"
    )


@cache
def engine_class(name: str) -> type[Engine[Any]]:
    entry = engine_entry(name)
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigurationError(f"engine {name!r}: no module {module_name!r}") from exc
        hint = f' (pip install "stemforge[{entry.extra}]")' if entry.extra else ""
        raise ConfigurationError(
            f"engine {name!r} needs the package {exc.name!r}, which is not installed{hint}"
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise ConfigurationError(f"engine {name!r}: {entry.target} is not a stemforge.engines.base.Engine")
    return cls


def create_engine(name: str, settings: Settings) -> Engine[Any]:
    engine_type: Any = engine_class(name)  # concrete subclasses take the settings
    engine: Engine[Any] = engine_type(settings)
    return engine
