import numpy as np
import pytest

from stemforge.music.theory import Key
from stemforge.quality.harmony import (
    chord_adherence,
    chords_per_bar,
    estimate_key,
    keys_agree,
    parse_key,
    stem_bar_chroma,
)
from stemforge.quality.rhythm import ANALYSIS_RATE, to_analysis_mono
from tests.quality.signals import SR, chord_sequence

BAR = 2.0  # 4/4 at 120 BPM
PROGRESSION = ["C", "G", "Am", "F"]


def _chroma(symbols: list[str]) -> np.ndarray:
    return stem_bar_chroma(to_analysis_mono(chord_sequence(symbols, BAR), SR), ANALYSIS_RATE, BAR)


def test_a_chord_sequence_follows_its_own_progression_bar_by_bar() -> None:
    chroma = _chroma(PROGRESSION * 2)

    result = chord_adherence(chroma, chords_per_bar(PROGRESSION, len(chroma)) or [])

    assert len(chroma) == 8
    assert result.adherence == 1.0
    assert result.bars_matched == [True] * 8
    assert min(s for s in result.bar_scores if s is not None) > 0.8


@pytest.mark.parametrize("asked", [["G", "Am", "F", "C"], ["Dm", "E", "Bb", "F#"]])
def test_a_chord_sequence_does_not_follow_another_progression(asked: list[str]) -> None:
    chroma = _chroma(PROGRESSION * 2)

    result = chord_adherence(chroma, chords_per_bar(asked, len(chroma)) or [])

    assert (result.adherence or 0.0) <= 0.25


def test_a_bass_is_judged_by_its_strongest_pitch_class() -> None:
    # Single notes: the roots of the progression, then wrong notes (a tritone away).
    chroma = np.zeros((8, 12))
    for bar, root in enumerate([0, 7, 9, 5, 6, 1, 3, 11]):
        chroma[bar, root] = 1.0

    result = chord_adherence(chroma, chords_per_bar(PROGRESSION, 8) or [], by_root=True)

    assert result.bars_matched == [True] * 4 + [False] * 4
    assert result.adherence == 0.5


def test_rests_are_not_scored() -> None:
    chroma = np.zeros((4, 12))
    chroma[0, [0, 4, 7]] = 1.0

    result = chord_adherence(chroma, chords_per_bar(["C"], 4) or [])

    assert result.bars_matched == [True, None, None, None]
    assert result.adherence == 1.0


@pytest.mark.parametrize(("tonic", "mode"), [(0, "major"), (9, "minor"), (6, "major"), (2, "minor")])
def test_key_of_a_scale_weighted_like_its_profile(tonic: int, mode: str) -> None:
    from stemforge.quality.harmony import MAJOR_PROFILE, MINOR_PROFILE

    profile = MAJOR_PROFILE if mode == "major" else MINOR_PROFILE
    estimate = estimate_key(np.roll(profile, tonic))

    assert estimate is not None
    assert estimate.key == Key(tonic, mode)
    assert estimate.confidence == pytest.approx(1.0)


def test_key_of_a_progression_in_c_major() -> None:
    estimate = estimate_key(_chroma(["C", "F", "G", "C"]))

    assert estimate is not None and estimate.key == Key(0, "major")


def test_keys_agree_with_themselves_and_their_relatives_only() -> None:
    c_major = parse_key("C major")

    assert c_major == Key(0, "major")
    assert parse_key("F# minor") == Key(6, "minor")
    assert parse_key("H dorian") is None
    assert keys_agree(Key(0, "major"), Key(0, "major"))
    assert keys_agree(Key(9, "minor"), Key(0, "major"))
    assert keys_agree(Key(0, "major"), Key(9, "minor"))
    assert not keys_agree(Key(7, "major"), Key(0, "major"))
    assert not keys_agree(Key(0, "minor"), Key(0, "major"))
