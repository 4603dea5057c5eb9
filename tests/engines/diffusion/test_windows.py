"""Windows on the bar grid and their crossfades: pure, no torch."""

import itertools

import numpy as np
import pytest

from stemforge.engines.diffusion.windows import AudioWindow, bar_seconds, plan_windows, stitch

SR = 44_100


@pytest.mark.parametrize("bpm", [40.0, 87.0, 120.0, 174.0])
@pytest.mark.parametrize("duration", [3.0, 47.0, 47.6, 60.0, 120.0, 300.0])
@pytest.mark.parametrize("overlap_bars", [1, 2])
def test_windows_start_on_downbeats_overlap_by_whole_bars_and_cover_the_stem(bpm, duration, overlap_bars):
    bar = bar_seconds(bpm)
    windows = plan_windows(duration, bar, 47.55, overlap_bars)
    if duration <= 47.55:
        assert windows == [AudioWindow(0.0, duration, 0.0)]
        return
    assert len({w.length for w in windows}) == 1  # one latent length: one pipeline call
    assert all(w.length <= 47.55 for w in windows)
    assert windows[-1].start + windows[-1].length >= duration - 1e-9
    for previous, window in itertools.pairwise(windows):
        assert window.start / bar == pytest.approx(round(window.start / bar))  # a downbeat
        assert window.fade == pytest.approx(overlap_bars * bar)
        assert previous.start + previous.length - window.start == pytest.approx(window.fade)
    # The fewest windows: one fewer, at the longest whole-bar stride, could not cover the stem.
    longest_stride = (47.55 - overlap_bars * bar) // bar * bar
    assert (len(windows) - 1) * longest_stride < duration - overlap_bars * bar


def test_a_window_too_short_for_two_bars_falls_back_to_the_beat_grid():
    beat = 60.0 / 40.0
    windows = plan_windows(30.0, bar_seconds(40.0), 5.12, 1)
    assert windows[-1].start + windows[-1].length >= 30.0
    for window in windows[1:]:
        assert window.start / beat == pytest.approx(round(window.start / beat))  # on a beat
        assert window.fade == pytest.approx(beat)


def test_a_window_too_short_for_two_beats_is_refused():
    with pytest.raises(ValueError, match="cannot hold two beats"):
        plan_windows(30.0, bar_seconds(40.0), 2.9, 1)


def test_stitch_has_the_exact_length_and_an_equal_power_seam():
    windows = plan_windows(10.0, 2.0, 6.0, 1)
    rng = np.random.default_rng(0)
    pieces = [rng.standard_normal((round(w.length * SR), 2)).astype(np.float32) for w in windows]
    out = stitch(pieces, windows, SR, 10 * SR)
    assert out.shape == (10 * SR, 2)
    # Independent takes crossfaded with sine/cosine gains keep their power through the seam.
    seam = windows[1]
    inside = out[round(seam.start * SR) : round((seam.start + seam.fade) * SR)]
    assert np.mean(inside**2) == pytest.approx(1.0, rel=0.05)
    # Before the seam the first window, after it the second, sample for sample.
    np.testing.assert_array_equal(out[: round(seam.start * SR)], pieces[0][: round(seam.start * SR)])
    after = round((seam.start + seam.fade) * SR)
    np.testing.assert_array_equal(out[after : after + 100], pieces[1][round(seam.fade * SR) :][:100])


def test_stitch_of_one_window_is_the_window():
    piece = np.ones((SR, 2), dtype=np.float32)
    np.testing.assert_array_equal(stitch([piece], [AudioWindow(0.0, 1.0, 0.0)], SR, SR), piece)
