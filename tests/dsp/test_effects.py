import numpy as np
import pytest

from stemforge.dsp.effects import EffectSettings, apply_effects
from stemforge.music.spec import STEM_TYPES

SR = 44_100


@pytest.mark.parametrize("stem", STEM_TYPES)
def test_chains_keep_length_and_stay_finite(stem):
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((SR, 2)) * 0.1).astype(np.float32)
    out = apply_effects(audio, SR, EffectSettings(stem, 0.5, 0.8, 0.5, lofi=True))
    assert out.shape == audio.shape and out.dtype == np.float32 and np.all(np.isfinite(out))


def test_distortion_adds_harmonics_to_the_guitar():
    t = np.arange(SR) / SR
    sine = np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32) * 0.3

    def third_harmonic_share(audio: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(audio[:, 0]))
        return float(spectrum[660] / spectrum[220])

    clean = apply_effects(sine, SR, EffectSettings("guitar", 0.0, 0.0, 0.5))
    driven = apply_effects(sine, SR, EffectSettings("guitar", 0.0, 1.0, 0.5))
    assert third_harmonic_share(driven) > 10 * third_harmonic_share(clean)
