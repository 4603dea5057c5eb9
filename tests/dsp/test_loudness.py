import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from stemforge.dsp.loudness import integrated_lufs, normalize_loudness, true_peak_dbfs
from stemforge.dsp.mastering import master_stem

SR = 44_100


def _signals():
    rng = np.random.default_rng(0)
    t = np.arange(SR * 6) / SR
    decaying = np.sin(2 * np.pi * 220 * t) * np.exp(-(t % 0.5) * 8)
    clicks = np.zeros_like(t)
    clicks[:: SR // 2] = 0.9
    return {
        "noise": rng.standard_normal((len(t), 2)) * 0.1,
        "plucks": np.stack([decaying * 0.6, decaying * 0.3], axis=1),
        "clicks": np.stack([clicks, clicks], axis=1) + 0.01 * rng.standard_normal((len(t), 2)),
        "quarter_band_sine": np.stack([np.sin(2 * np.pi * SR / 4 * t + np.pi / 4)] * 2, axis=1) * 0.5,
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_integrated_lufs_agrees_with_pyloudnorm(name):
    audio = _signals()[name].astype(np.float32)
    reference = pyloudnorm.Meter(SR).integrated_loudness(audio.astype(np.float64))
    assert integrated_lufs(audio, SR) == pytest.approx(reference, abs=0.01)


@pytest.mark.parametrize("name", ["plucks", "clicks", "quarter_band_sine"])
def test_true_peak_agrees_with_long_filter_oversampling(name):
    audio = _signals()[name].astype(np.float32)
    reference = 20 * np.log10(np.max(np.abs(resample_poly(audio, 4, 1, axis=0))))
    assert true_peak_dbfs(audio) == pytest.approx(reference, abs=0.2)


@pytest.mark.parametrize("name", list(_signals()))
@pytest.mark.parametrize("target", [-14.0, -20.0])
def test_master_reaches_the_target_under_the_ceiling_without_dc(name, target):
    audio = (_signals()[name] + 0.05).astype(np.float32)  # with a DC offset to remove
    out = master_stem(audio, SR, target, -1.0)
    assert out.dtype == np.float32 and out.shape == audio.shape
    assert integrated_lufs(out, SR) == pytest.approx(target, abs=1.0)
    assert 20 * np.log10(np.max(np.abs(resample_poly(out, 4, 1, axis=0)))) < -1.0
    assert np.all(np.abs(out.mean(axis=0)) < 1e-4)
    assert np.max(np.abs(out[-10:])) < 1e-3  # it fades to silence


def test_silence_stays_silence():
    silent = np.zeros((SR, 2), dtype=np.float32)
    assert not np.any(master_stem(silent, SR, -14.0, -1.0))
    assert not np.any(normalize_loudness(silent, SR))
