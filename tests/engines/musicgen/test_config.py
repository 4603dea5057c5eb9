"""user_config validation: pure, no torch."""

import pytest

from stemforge.engines.musicgen.config import MusicGenConfig, parse_config
from stemforge.errors import ConfigurationError


def test_empty_config_is_the_defaults() -> None:
    config = parse_config({})
    assert config == MusicGenConfig()
    assert config.guidance_scale == 3.0 and config.top_k == 250 and config.uses_guidance


def test_partial_config_changes_only_what_it_names() -> None:
    config = parse_config({"top_k": 0, "top_p": 0.9, "num_threads": 2, "time_stretch_to_bpm": True})
    assert (config.top_k, config.top_p, config.num_threads, config.time_stretch_to_bpm) == (0, 0.9, 2, True)
    assert config.window_seconds == MusicGenConfig().window_seconds


def test_integers_are_accepted_for_floats() -> None:
    assert parse_config({"guidance_scale": 1}).guidance_scale == 1.0
    assert not parse_config({"guidance_scale": 1}).uses_guidance


def test_base_config_is_kept_for_keys_left_out() -> None:
    base = parse_config({"top_k": 10})
    assert parse_config({"top_p": 0.5}, base=base).top_k == 10


@pytest.mark.parametrize(
    "raw",
    [
        {"guidance_scale": 0.5},
        {"guidance_scale": "3"},
        {"guidance_scale": float("nan")},
        {"top_k": -1},
        {"top_k": 2.5},
        {"top_p": 1.5},
        {"window_seconds": 60},
        {"window_seconds": 10, "stride_seconds": 10},
        {"time_stretch_to_bpm": "yes"},
        {"cpu_int8": 1},
        {"num_threads": 0},
        {"num_threads": True},
        {"kv_cache": "static"},
        {"target_lufs": 3},
        {"guidence_scale": 3.0},
    ],
)
def test_nonsense_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        parse_config(raw)


def test_unknown_key_error_names_the_key() -> None:
    with pytest.raises(ConfigurationError, match="guidence_scale"):
        parse_config({"guidence_scale": 3.0})


def test_num_threads_can_be_reset_to_default() -> None:
    assert parse_config({"num_threads": None}, base=parse_config({"num_threads": 2})).num_threads is None


def test_out_of_range_error_names_the_engine_key_range_and_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_config({"top_p": 2})
    assert caught.value.message == "musicgen user_config 'top_p' must be a number from 0.0 to 1.0; got 2"


def test_kv_cache_error_lists_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="'preallocated', 'dynamic'; got 'static'"):
        parse_config({"kv_cache": "static"})
