"""Per-stem seeds and tempo alignment (numpy and librosa, no torch)."""

import numpy as np
import pytest

from stemforge.engines.alignment import MAX_STRETCH, fold_tempo, stretch_rate, time_stretch
from stemforge.engines.seeds import stem_seed


def test_stem_seeds_are_stable_distinct_and_in_range() -> None:
    seeds = {stem_seed(42, stem) for stem in ("drums", "bass", "piano")}
    assert len(seeds) == 3
    assert stem_seed(42, "drums") == stem_seed(42, "drums")
    assert stem_seed(42, "drums") != stem_seed(43, "drums")
    assert all(0 <= seed < 2**63 for seed in seeds)
    # A known value: a change here changes every user's audio for the same seed.
    assert stem_seed(0, "drums") == 1711413217362060176


def test_fold_tempo_takes_the_nearest_half_or_double_time() -> None:
    assert fold_tempo(60.0, 120.0) == 120.0
    assert fold_tempo(246.0, 120.0) == 123.0
    assert fold_tempo(118.0, 120.0) == 118.0


def test_stretch_rate() -> None:
    assert stretch_rate(115.0, 120.0) == pytest.approx(120 / 115)
    assert stretch_rate(57.5, 120.0) == pytest.approx(120 / 115)  # half time folds first
    assert stretch_rate(120.2, 120.0) is None  # close enough already
    assert stretch_rate(120 * (1 + MAX_STRETCH + 0.05), 120.0) is None  # too far to stretch cleanly
    assert stretch_rate(0.0, 120.0) is None
    assert stretch_rate(float("nan"), 120.0) is None


def test_time_stretch_changes_length_by_the_rate() -> None:
    audio = np.random.default_rng(0).standard_normal((44_100, 2)).astype(np.float32) * 0.1
    stretched = time_stretch(audio, 1.25)
    assert stretched.shape[1] == 2
    assert stretched.shape[0] == pytest.approx(44_100 / 1.25, rel=0.01)
    assert stretched.dtype == np.float32
