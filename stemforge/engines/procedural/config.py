"""The procedural engine's ``user_config``: what a deployment can change without a restart.

target_lufs: -14.0          # loudness of every stem (LUFS), -40 .. -6
peak_ceiling_dbfs: -1.0     # true-peak ceiling (dBFS), -12 .. -0.1
soundfont: auto             # auto (Debian's FluidR3 GM if installed), a .sf2/.sf3 path, or none
effects: true               # reverb, drive, compression per stem
midi: true                  # attach each stem's notes as .mid and the song plan as .json
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stemforge.errors import ConfigurationError

SOUNDFONT_AUTO = "auto"
NO_SOUNDFONT = ("none", "off", "")


@dataclass(frozen=True)
class ProceduralConfig:
    target_lufs: float = -14.0
    peak_ceiling_dbfs: float = -1.0
    soundfont: str = SOUNDFONT_AUTO
    effects: bool = True
    midi: bool = True


def _number(config: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigurationError(f"user_config.{key} must be a number from {low} to {high}; got {value!r}")
    return float(value)


def _flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"user_config.{key} must be true or false; got {value!r}")
    return value


def parse_config(config: Mapping[str, Any]) -> ProceduralConfig:
    known = {"target_lufs", "peak_ceiling_dbfs", "soundfont", "effects", "midi"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown user_config keys for the procedural engine: {unknown}; known: {sorted(known)}"
        )
    soundfont = config.get("soundfont", SOUNDFONT_AUTO)
    if soundfont is None:
        soundfont = "none"
    if not isinstance(soundfont, str):
        raise ConfigurationError(
            f"user_config.soundfont must be 'auto', 'none' or a file path; got {soundfont!r}"
        )
    if soundfont.strip().lower() not in (SOUNDFONT_AUTO, *NO_SOUNDFONT) and not Path(soundfont).is_file():
        raise ConfigurationError(f"user_config.soundfont: no SoundFont file at {soundfont!r}")
    return ProceduralConfig(
        target_lufs=_number(config, "target_lufs", -14.0, -40.0, -6.0),
        peak_ceiling_dbfs=_number(config, "peak_ceiling_dbfs", -1.0, -12.0, -0.1),
        soundfont=soundfont.strip(),
        effects=_flag(config, "effects", True),
        midi=_flag(config, "midi", True),
    )
