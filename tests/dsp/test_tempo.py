import numpy as np
import pytest

from stemforge.dsp.tempo import estimate_bpm

SR = 22_050


def _click_track(bpm: float, seconds: float) -> np.ndarray:
    audio = np.zeros(int(seconds * SR), dtype=np.float32)
    t = np.arange(int(0.03 * SR)) / SR
    click = np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.005)
    beat = 0
    while (start := round(beat * 60.0 / bpm * SR)) + len(click) < len(audio):
        audio[start : start + len(click)] += click * (1.0 if beat % 4 == 0 else 0.6)
        beat += 1
    return audio


@pytest.mark.parametrize("bpm", [60.0, 87.0, 120.0, 143.0, 178.0, 200.0])
def test_tempo_of_a_click_track_within_half_a_percent(bpm):
    measured = estimate_bpm(_click_track(bpm, 20.0), SR, start_bpm=bpm)
    assert measured == pytest.approx(bpm, rel=0.005)
