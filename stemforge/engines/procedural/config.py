"""The procedural engine's ``user_config``: what a deployment can change without a restart.

target_lufs: -14.0          # loudness of every stem (LUFS), -40 .. -6
peak_ceiling_dbfs: -1.0     # true-peak ceiling (dBFS), -12 .. -0.1
soundfont: auto             # auto (Debian's FluidR3 GM if installed), a .sf2/.sf3 path, or none
effects: true               # reverb, drive, compression per stem
midi: true                  # attach each stem's notes as .mid and the song plan as .json
stem_levels: mix            # mix: every stem at its level in the band (the seven summed at unity
                            #   make a balanced mix at target_lufs); normalized: every stem at
                            #   target_lufs on its own (its band level is then its mix_gain_db)
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from stemforge.engines.config import Range, parse_user_config
from stemforge.errors import ConfigurationError

SOUNDFONT_AUTO = "auto"
NO_SOUNDFONT = ("none", "off", "")


@dataclass(frozen=True)
class ProceduralConfig:
    target_lufs: Annotated[float, Range(-40.0, -6.0)] = -14.0
    peak_ceiling_dbfs: Annotated[float, Range(-12.0, -0.1)] = -1.0
    soundfont: str = SOUNDFONT_AUTO
    effects: bool = True
    midi: bool = True
    stem_levels: Literal["mix", "normalized"] = "mix"


def parse_config(config: Mapping[str, Any], base: ProceduralConfig | None = None) -> ProceduralConfig:
    """Validate a ``user_config`` over ``base`` (the defaults when None, as the engine calls it:
    each reconfigure is a full config)."""
    if isinstance(config, Mapping) and "soundfont" in config and config["soundfont"] is None:
        # YAML's `soundfont: none` is a string, but a bare `soundfont:` arrives as null.
        config = {**config, "soundfont": "none"}
    parsed = parse_user_config(ProceduralConfig, config, engine="procedural", base=base)
    soundfont = parsed.soundfont.strip()
    if soundfont.lower() not in (SOUNDFONT_AUTO, *NO_SOUNDFONT) and not Path(soundfont).is_file():
        raise ConfigurationError(f"procedural user_config 'soundfont': no SoundFont file at {soundfont!r}")
    return replace(parsed, soundfont=soundfont)
