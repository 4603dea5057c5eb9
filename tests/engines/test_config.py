"""The shared user_config parser, over a small dataclass with one field of each supported kind."""

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from stemforge.engines.config import Range, parse_user_config
from stemforge.engines.musicgen import config as musicgen_config
from stemforge.engines.musicgen.config import MusicGenConfig
from stemforge.engines.procedural import config as procedural_config
from stemforge.engines.procedural.config import ProceduralConfig
from stemforge.errors import ConfigurationError


@dataclass(frozen=True)
class Sample:
    flag: bool = True
    count: Annotated[int, Range(1, 8)] = 2
    ratio: Annotated[float, Range(0.0, 1.0)] = 0.5
    gain: float = 0.0
    label: str = "x"
    mode: Literal["fast", "slow"] = "fast"
    threads: Annotated[int, Range(1, 256)] | None = None
    limit: Annotated[float | None, Range(-1, 1)] = None


def _parse(raw: dict[str, Any], base: Sample | None = None) -> Sample:
    return parse_user_config(Sample, raw, engine="sample", base=base)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"flag": False}, {"flag": False}),
        ({"count": 1}, {"count": 1}),
        ({"count": 8}, {"count": 8}),
        ({"ratio": 0.0}, {"ratio": 0.0}),
        ({"ratio": 1}, {"ratio": 1.0}),
        ({"gain": -1e6}, {"gain": -1e6}),
        ({"label": ""}, {"label": ""}),
        ({"mode": "slow"}, {"mode": "slow"}),
        ({"threads": 256}, {"threads": 256}),
        ({"threads": None}, {"threads": None}),
        ({"limit": -1}, {"limit": -1.0}),
        ({"limit": None}, {"limit": None}),
    ],
)
def test_valid_values_are_accepted(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert asdict(_parse(raw)) == {**asdict(Sample()), **expected}


def test_ints_given_for_floats_become_floats() -> None:
    assert type(_parse({"ratio": 1}).ratio) is float
    assert type(_parse({"gain": 3}).gain) is float


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"flag": 1}, "sample user_config 'flag' must be true or false; got 1"),
        ({"flag": "yes"}, "sample user_config 'flag' must be true or false; got 'yes'"),
        ({"count": 0}, "sample user_config 'count' must be an integer from 1 to 8; got 0"),
        ({"count": 9}, "sample user_config 'count' must be an integer from 1 to 8; got 9"),
        ({"count": True}, "sample user_config 'count' must be an integer from 1 to 8; got True"),
        ({"count": 2.0}, "sample user_config 'count' must be an integer from 1 to 8; got 2.0"),
        ({"count": "2"}, "sample user_config 'count' must be an integer from 1 to 8; got '2'"),
        ({"count": None}, "sample user_config 'count' must be an integer from 1 to 8; got None"),
        ({"ratio": -0.001}, "sample user_config 'ratio' must be a number from 0.0 to 1.0; got -0.001"),
        ({"ratio": 2}, "sample user_config 'ratio' must be a number from 0.0 to 1.0; got 2"),
        ({"ratio": False}, "sample user_config 'ratio' must be a number from 0.0 to 1.0; got False"),
        ({"gain": float("nan")}, "sample user_config 'gain' must be a number; got nan"),
        ({"gain": float("inf")}, "sample user_config 'gain' must be a number; got inf"),
        ({"gain": 10**400}, "sample user_config 'gain' must be a number; got 1000"),
        ({"label": 3}, "sample user_config 'label' must be a string; got 3"),
        ({"mode": "medium"}, "sample user_config 'mode' must be one of 'fast', 'slow'; got 'medium'"),
        ({"threads": 0}, "sample user_config 'threads' must be an integer from 1 to 256 or null; got 0"),
        ({"limit": 1.5}, "sample user_config 'limit' must be a number from -1.0 to 1.0 or null; got 1.5"),
    ],
)
def test_bad_values_are_refused_naming_key_allowed_values_and_value(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match="^" + re.escape(message)):
        _parse(raw)


def test_unknown_keys_are_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        _parse({"ratoi": 0.5, "count": 3})
    assert caught.value.message == (
        "unknown sample user_config keys ['ratoi']; known keys: "
        "['count', 'flag', 'gain', 'label', 'limit', 'mode', 'ratio', 'threads']"
    )


def test_a_non_mapping_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="sample user_config must be a mapping"):
        parse_user_config(Sample, ["count"], engine="sample")  # type: ignore[arg-type]


def test_keys_left_out_keep_the_base_values() -> None:
    base = _parse({"count": 5, "mode": "slow", "threads": 4})
    updated = _parse({"ratio": 0.25, "threads": None}, base=base)
    assert (updated.count, updated.mode, updated.ratio, updated.threads) == (5, "slow", 0.25, None)
    assert _parse({}, base=base) == base


def test_without_a_base_keys_left_out_take_the_defaults() -> None:
    assert _parse({}) == Sample()


@dataclass(frozen=True)
class _ListField:
    names: list[str]


@dataclass(frozen=True)
class _RangeOnString:
    name: Annotated[str, Range(0, 1)] = ""


@dataclass(frozen=True)
class _FractionalIntRange:
    count: Annotated[int, Range(0.5, 2)] = 1


@pytest.mark.parametrize("config_type", [_ListField, _RangeOnString, _FractionalIntRange])
def test_unsupported_field_declarations_are_a_programming_error(config_type: type) -> None:
    with pytest.raises(TypeError, match=config_type.__name__):
        parse_user_config(config_type, {}, engine="sample")


@pytest.mark.parametrize("config_type", [MusicGenConfig, ProceduralConfig])
def test_engine_defaults_pass_their_own_declarations(config_type: type) -> None:
    defaults = config_type()
    assert parse_user_config(config_type, asdict(defaults), engine="test") == defaults


def test_procedural_soundfont_null_means_none_and_paths_are_checked(tmp_path: Path) -> None:
    parse_config = procedural_config.parse_config
    assert parse_config({"soundfont": None}).soundfont == "none"
    assert parse_config({"soundfont": " auto "}).soundfont == "auto"
    font = tmp_path / "font.sf2"
    font.write_bytes(b"")
    assert parse_config({"soundfont": str(font)}).soundfont == str(font)
    with pytest.raises(ConfigurationError, match="procedural user_config 'soundfont': no SoundFont file at"):
        parse_config({"soundfont": str(tmp_path / "missing.sf2")})
    with pytest.raises(
        ConfigurationError, match=re.escape("'target_lufs' must be a number from -40.0 to -6.0; got 3")
    ):
        parse_config({"target_lufs": 3})


def test_musicgen_stride_must_be_shorter_than_the_window() -> None:
    parse_config = musicgen_config.parse_config
    with pytest.raises(ConfigurationError, match="'stride_seconds' must be shorter than 'window_seconds'"):
        parse_config({"window_seconds": 10, "stride_seconds": 10})
    assert parse_config({"window_seconds": 10, "stride_seconds": 9.5}).stride_seconds == 9.5
