from fractions import Fraction

import numpy as np
import pytest

from stemforge.quality.rhythm import (
    ANALYSIS_RATE,
    grid_phase,
    metrical_relation,
    rhythm_metrics,
    to_analysis_mono,
)
from tests.quality.signals import SR, click_track


def _measure(audio: np.ndarray, bpm: float, beats_per_bar: int = 4):
    return rhythm_metrics(to_analysis_mono(audio, SR), bpm, beats_per_bar)


@pytest.mark.parametrize("bpm", [60.0, 97.0, 128.0, 174.0])
def test_a_click_track_measures_its_tempo_on_the_grid(bpm: float) -> None:
    metrics = _measure(click_track(bpm, 20.0), bpm)

    assert metrics.tempo_bpm == pytest.approx(bpm, rel=0.005)
    assert metrics.tempo_relation == "1"
    assert abs(metrics.tempo_error_percent or 99) < 0.5
    assert (metrics.tempo_confidence) > 0.6
    assert abs(metrics.grid_offset_ms or 99) < 4.0
    assert metrics.grid_coherence > 0.9
    assert metrics.first_downbeat_offset_ms == pytest.approx(0.0, abs=6.0)
    assert metrics.onset_density_per_second == pytest.approx(bpm / 60.0, rel=0.1)


@pytest.mark.parametrize("shift_ms", [-40.0, -15.0, 20.0, 45.0])
def test_a_click_track_shifted_off_the_grid_reads_its_shift(shift_ms: float) -> None:
    # 97 BPM: the eighth-note grid is 309 ms, so shifts up to +-154 ms read unambiguously.
    metrics = _measure(click_track(97.0, 20.0, shift=0.5 * 60 / 97 + shift_ms / 1000), 97.0)

    assert metrics.grid_offset_ms == pytest.approx(shift_ms, abs=4.0)


def test_a_stem_off_tempo_keeps_its_own_tempo() -> None:
    metrics = _measure(click_track(115.2, 20.0), 120.0)

    assert metrics.tempo_bpm == pytest.approx(115.2, rel=0.005)
    assert metrics.tempo_relation == "1"
    assert metrics.tempo_error_percent == pytest.approx(-4.0, abs=0.5)


def test_half_time_is_a_metrical_relative_not_an_error() -> None:
    metrics = _measure(click_track(60.0, 20.0), 120.0)

    assert metrics.tempo_relation == "1/2"
    assert abs(metrics.tempo_error_percent or 99) < 0.5


def test_noise_has_no_confident_tempo() -> None:
    noise = np.random.default_rng(3).normal(0, 0.1, (SR * 10, 2)).astype(np.float32)

    metrics = _measure(noise, 110.0)

    assert metrics.tempo_confidence < 0.1
    assert metrics.grid_coherence < 0.3


def test_the_first_downbeat_is_measured_from_the_nearest_bar_line() -> None:
    # Bars of 2 s at 120 BPM: music starting 250 ms in is 250 ms late; at 1.9 s, 100 ms early.
    assert _measure(click_track(120.0, 10.0, shift=0.25), 120.0).first_downbeat_offset_ms == pytest.approx(
        250.0, abs=6.0
    )
    early = _measure(click_track(120.0, 10.0, shift=1.9), 120.0, beats_per_bar=4)
    assert early.first_downbeat_offset_ms == pytest.approx(-100.0, abs=6.0)


def test_silence_has_no_tempo() -> None:
    metrics = rhythm_metrics(np.zeros(ANALYSIS_RATE * 3, dtype=np.float32), 120.0)

    assert metrics.tempo_bpm is None
    assert metrics.first_downbeat_offset_ms is None
    assert metrics.onset_density_per_second == 0.0


@pytest.mark.parametrize(
    ("measured", "asked", "relation", "error"),
    [
        (120.0, 120.0, Fraction(1), 0.0),
        (61.2, 120.0, Fraction(1, 2), 2.0),
        (180.0, 120.0, Fraction(3, 2), 0.0),
    ],
)
def test_metrical_relation(measured: float, asked: float, relation: Fraction, error: float) -> None:
    found, percent = metrical_relation(measured, asked)

    assert found == relation
    assert percent == pytest.approx(error, abs=1e-9)


def test_grid_phase_of_onsets_on_and_off_the_grid() -> None:
    times = np.arange(20) * 0.5 + 0.03
    offset, coherence = grid_phase(times, np.ones(20), 0.5)

    assert offset == pytest.approx(0.03, abs=1e-9)
    assert coherence == pytest.approx(1.0)
    assert grid_phase(np.array([0.0, 0.25]), np.ones(2), 0.5)[1] == pytest.approx(0.0, abs=1e-9)
