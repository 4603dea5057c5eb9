import numpy as np
import pytest

from stemforge.quality.signal import (
    clipped_samples,
    dc_offset,
    signal_metrics,
    silence_share,
    spectral_balance,
)
from tests.quality.signals import SR, sine, stereo


@pytest.mark.parametrize("level_dbfs", [-30.0, -20.0, -6.0])
def test_loudness_and_true_peak_of_a_sine_at_a_known_level(level_dbfs: float) -> None:
    # BS.1770: a 997 Hz sine peaking at 0 dBFS in one channel reads -3.01 LUFS; stereo adds 3 dB.
    amplitude = 10 ** (level_dbfs / 20)
    metrics = signal_metrics(stereo(sine(997.0, 5.0, amplitude)), SR)

    assert metrics.loudness_lufs == pytest.approx(level_dbfs, abs=0.1)
    assert metrics.true_peak_dbtp == pytest.approx(level_dbfs, abs=0.1)
    assert metrics.clipped_samples == 0
    assert metrics.silence_share == 0.0


def test_a_clipped_sine_counts_every_sample_at_full_scale() -> None:
    clipped = np.clip(sine(100.0, 1.0, 1.5), -1.0, 1.0)
    expected = int(np.count_nonzero(np.abs(1.5 * np.sin(2 * np.pi * 100.0 * np.arange(SR) / SR)) >= 0.999))

    assert clipped_samples(stereo(clipped)) == 2 * expected
    assert expected > 0.4 * SR  # a 1.5x overdriven sine spends about half its time clipped
    assert clipped_samples(stereo(sine(100.0, 1.0, 0.9))) == 0


def test_silence_has_no_loudness_no_peak_and_is_all_silent() -> None:
    metrics = signal_metrics(np.zeros((SR * 2, 2), dtype=np.float32), SR)

    assert metrics.loudness_lufs is None
    assert metrics.true_peak_dbtp is None
    assert metrics.silence_share == 1.0
    assert metrics.spectral_centroid_hz is None


@pytest.mark.parametrize("silent_seconds", [0.5, 1.0, 1.5])
def test_share_of_silence(silent_seconds: float) -> None:
    audio = sine(440.0, 2.0, 0.5)
    audio[: int(silent_seconds * SR)] = 0.0

    assert silence_share(stereo(audio), SR) == pytest.approx(silent_seconds / 2.0, abs=0.03)


def test_dc_offset_is_the_largest_channel_mean() -> None:
    audio = stereo(sine(440.0, 1.0, 0.5))
    audio[:, 1] += 0.05

    assert dc_offset(audio) == pytest.approx(0.05, abs=1e-4)


def test_sub_20hz_share_of_equal_rumble_and_tone_is_half() -> None:
    audio = sine(10.0, 4.0, 0.3) + sine(1000.0, 4.0, 0.3)

    share, _ = spectral_balance(stereo(audio), SR)

    assert share == pytest.approx(0.5, abs=0.05)
    assert spectral_balance(stereo(sine(1000.0, 4.0, 0.3)), SR)[0] < 1e-3


@pytest.mark.parametrize("freq", [250.0, 1000.0, 4000.0])
def test_spectral_centroid_of_a_sine_is_its_frequency(freq: float) -> None:
    _, centroid = spectral_balance(stereo(sine(freq, 2.0, 0.3)), SR)

    assert centroid == pytest.approx(freq, rel=0.02)
