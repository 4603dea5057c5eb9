import numpy as np
import pytest

from stemforge.dsp.tempo import estimate_bpm, grid_offset

SR = 22_050


def _click_track(bpm: float, seconds: float, offset: float = 0.0, sr: int = SR) -> np.ndarray:
    """Clicks every beat from ``offset`` seconds, every fourth (the downbeat) louder."""
    audio = np.zeros(int(seconds * sr), dtype=np.float32)
    t = np.arange(int(0.03 * sr)) / sr
    click = np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.005)
    beat = 0
    while (start := round((offset + beat * 60.0 / bpm) * sr)) + len(click) < len(audio):
        audio[start : start + len(click)] += click * (1.0 if beat % 4 == 0 else 0.6)
        beat += 1
    return audio


@pytest.mark.parametrize("bpm", [60.0, 87.0, 120.0, 143.0, 178.0, 200.0])
def test_tempo_of_a_click_track_within_half_a_percent(bpm):
    measured = estimate_bpm(_click_track(bpm, 20.0), SR, start_bpm=bpm)
    assert measured == pytest.approx(bpm, rel=0.005)


@pytest.mark.parametrize("bpm", [72.0, 120.0, 150.0])
@pytest.mark.parametrize("offset_beats", [0.0, 0.1, 0.3, -0.2])
def test_grid_offset_finds_where_the_beats_fall_within_3_ms(bpm, offset_beats):
    beat = 60.0 / bpm
    offset = offset_beats * beat
    # A negative offset: the first click is late by a beat less than that (the beat before is cut).
    audio = _click_track(bpm, 12.0, offset % beat, sr=44_100)
    measured = grid_offset(audio, 44_100, bpm)
    assert measured.beat_seconds == pytest.approx(offset, abs=0.003)
    assert measured.strength > 0.9


@pytest.mark.parametrize("downbeat_beat", [0, 1, 3])
def test_grid_offset_finds_the_downbeat_by_its_accent(downbeat_beat):
    bpm, beat = 120.0, 0.5
    # Start the accented pattern early so the accent falls on beat ``downbeat_beat`` of the grid.
    audio = _click_track(bpm, 16.0, 0.0, sr=44_100)
    shift = round(((4 - downbeat_beat) % 4) * beat * 44_100)
    audio = audio[shift:] if shift else audio
    measured = grid_offset(audio, 44_100, bpm)
    expected = downbeat_beat * beat
    expected = expected - 2.0 if expected >= 1.0 else expected  # signed, within half a bar
    assert measured.downbeat_seconds == pytest.approx(expected, abs=0.003)


def test_noise_has_no_grid_to_speak_of():
    noise = np.random.default_rng(0).standard_normal(44_100 * 8).astype(np.float32) * 0.1
    assert grid_offset(noise, 44_100, 120.0).strength < 0.7
