"""Which engine renders which stem: a table per mode, read from ``configs/routing.yaml``."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stemforge.engines.registry import engine_entry
from stemforge.errors import ConfigurationError
from stemforge.music.spec import STEM_TYPES

MODES = ("mock", "ai")


@dataclass(frozen=True)
class RoutingTable:
    """``stems[mode][stem] -> engine``; every stem type has an engine in every mode. What one
    request may ask of an engine is the engine's own rule (``Engine.check``)."""

    stems: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "RoutingTable":
        table: dict[str, dict[str, str]] = {}
        for mode in MODES:
            section = raw.get(mode)
            if not isinstance(section, Mapping) or "default" not in section:
                raise ConfigurationError(f"routing: mode {mode!r} needs a 'default' engine")
            overrides = section.get("stems") or {}
            unknown = set(overrides) - set(STEM_TYPES)
            if unknown:
                raise ConfigurationError(f"routing: {mode}.stems names unknown stems {sorted(unknown)}")
            table[mode] = {stem: str(overrides.get(stem, section["default"])) for stem in STEM_TYPES}
            for engine in table[mode].values():
                engine_entry(engine)  # raises on an unknown engine name
        return cls(stems=table)

    @classmethod
    def load(cls, path: Path) -> "RoutingTable":
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read stem routing table {path}: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"stem routing table {path} must be a mapping of modes")
        return cls.from_mapping(raw)

    def engines(self, mode: str) -> list[str]:
        """The engines a mode needs, in a stable order."""
        return sorted(set(self.stems[mode].values()))

    def route(
        self, mode: str, stems: Sequence[str], overrides: Mapping[str, str] | None = None
    ) -> dict[str, tuple[str, ...]]:
        """Group ``stems`` by engine, keeping the request's order within each group; a stem in
        ``overrides`` (a request's ``parameters.engines``, already checked) goes to its engine."""
        overrides = overrides or {}
        routes: dict[str, list[str]] = {}
        for stem in stems:
            routes.setdefault(overrides.get(stem, self.stems[mode][stem]), []).append(stem)
        return {engine: tuple(group) for engine, group in routes.items()}
