import numpy as np
import pytest

from stemforge.dsp.loudness import integrated_lufs, true_peak_dbfs
from stemforge.quality.bounds import MixStaging
from stemforge.quality.mix import MixInput, mix_stems
from tests.quality.signals import SR, sine, stereo


def test_loudness_matched_stems_sit_at_the_stem_target() -> None:
    quiet = stereo(sine(220.0, 3.0, 0.01))
    loud = stereo(sine(880.0, 3.0, 0.5))

    mix = mix_stems(
        [MixInput("bass", quiet, None), MixInput("piano", loud, None)], SR, MixStaging(-26.0, -1.0)
    )

    for stem, audio in (("bass", quiet), ("piano", loud)):
        gained = audio * 10 ** (mix.stem_gains_db[stem] / 20)
        assert integrated_lufs(gained, SR) == pytest.approx(-26.0, abs=0.05)
    assert mix.gain_sources == {"bass": "loudness-matched", "piano": "loudness-matched"}
    assert mix.master_gain_db == 0.0  # well under the ceiling: never raised
    assert mix.audio.shape == quiet.shape


def test_engine_gains_are_applied_as_given() -> None:
    audio = stereo(sine(440.0, 2.0, 0.1))

    mix = mix_stems([MixInput("drums", audio, -6.0)], SR, MixStaging())

    assert mix.stem_gains_db == {"drums": -6.0}
    assert mix.gain_sources == {"drums": "engine"}
    np.testing.assert_allclose(mix.audio, audio * 10 ** (-6 / 20), atol=1e-6)


@pytest.mark.parametrize("ceiling", [-1.0, -3.0])
def test_a_loud_sum_is_turned_down_under_the_true_peak_ceiling(ceiling: float) -> None:
    stems = [MixInput(s, stereo(sine(f, 2.0, 0.9)), 0.0) for s, f in (("bass", 110.0), ("synth", 330.0))]

    mix = mix_stems(stems, SR, MixStaging(true_peak_dbtp=ceiling))

    assert true_peak_dbfs(mix.audio) <= ceiling
    assert true_peak_dbfs(mix.audio) > ceiling - 0.3
    assert mix.master_gain_db < 0


def test_the_mix_is_as_long_as_the_longest_stem_and_a_silent_stem_stays_silent() -> None:
    short = stereo(sine(440.0, 1.0, 0.1))
    silent = np.zeros((2 * SR, 2), dtype=np.float32)

    mix = mix_stems([MixInput("vocals", short, None), MixInput("other", silent, None)], SR, MixStaging())

    assert mix.audio.shape == (2 * SR, 2)
    assert mix.stem_gains_db["other"] == 0.0
    assert not np.any(mix.audio[SR:])
