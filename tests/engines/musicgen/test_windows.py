"""Window and delay-pattern arithmetic: pure, no torch."""

import itertools

import pytest

from stemforge.engines.musicgen.windows import (
    Window,
    codebook_delays,
    decode_steps,
    frames_for_seconds,
    plan_windows,
)


def test_frames_for_seconds_rounds_up_without_float_noise() -> None:
    assert frames_for_seconds(10.0, 50) == 500
    assert frames_for_seconds(0.1 * 3, 50) == 15
    assert frames_for_seconds(10.01, 50) == 501
    assert frames_for_seconds(0.0, 50) == 1


def test_short_stem_is_one_window() -> None:
    assert plan_windows(500, 1500, 900) == [Window(start=0, prompt=0, new=500)]


@pytest.mark.parametrize("total", [1501, 2400, 3000, 15_000, 2401])
def test_windows_cover_the_stem_contiguously(total: int) -> None:
    windows = plan_windows(total, 1500, 900)
    assert windows[0] == Window(0, 0, 1500)
    assert sum(w.new for w in windows) == total
    for before, after in itertools.pairwise(windows):
        assert after.start == before.end
        assert after.prompt == 600  # window - stride: the tail that prompts the next window
        assert after.first_frame >= 0
        assert 0 < after.new <= 900
        assert after.prompt + after.new <= 1500  # never more than the model's window


def test_window_starts_do_not_depend_on_total() -> None:
    # Rows of different lengths share windows in a batch; their boundaries must agree.
    long, short = plan_windows(5000, 1500, 900), plan_windows(2000, 1500, 900)
    assert [w.start for w in long[: len(short)]] == [w.start for w in short]


@pytest.mark.parametrize(("total", "window", "stride"), [(0, 10, 5), (10, 0, 1), (10, 5, 5), (10, 5, 0)])
def test_invalid_plans_raise(total: int, window: int, stride: int) -> None:
    with pytest.raises(ValueError):
        plan_windows(total, window, stride)


def test_delay_pattern() -> None:
    assert codebook_delays(4, 1) == [0, 1, 2, 3]
    # Stereo checkpoints interleave left/right codebooks that share a delay.
    assert codebook_delays(8, 2) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_decode_steps_match_musicgen_max_new_tokens() -> None:
    # transformers' generate needs max_new_tokens = frames + 3 for 4 codebooks.
    length, steps = decode_steps(prompt=0, new=500, max_delay=3)
    assert steps == 503
    assert length == 504  # the start token, then 500 frames delayed by up to 3
    assert decode_steps(prompt=600, new=900, max_delay=3) == (1504, 903)
