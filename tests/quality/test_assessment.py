import numpy as np
import pytest

from stemforge.dsp.loudness import true_peak_dbfs
from stemforge.quality.assessment import assess
from stemforge.quality.mix import MixInput
from stemforge.quality.report import RequestContext
from tests.quality.signals import SR, chord_sequence, click_track

CONTEXT = RequestContext(bpm=120.0, sample_rate=SR, chord_progression=("C", "G", "Am", "F"), key="C major")


def _stems(shift: float = 0.0) -> list[MixInput]:
    return [
        MixInput("drums", click_track(120.0, 8.0, shift=shift), None),
        MixInput("piano", chord_sequence(["C", "G", "Am", "F"], 2.0), -3.0),
    ]


def test_stems_on_the_grid_and_the_chords_have_no_musical_warnings() -> None:
    assessment = assess(_stems(), CONTEXT)

    drums, piano = assessment.stems["drums"], assessment.stems["piano"]
    assert drums["tempo_bpm"] == pytest.approx(120.0, rel=0.01)
    assert "chord_adherence" not in drums and "key" not in drums
    assert piano["chord_adherence"] == 1.0
    assert piano["key"] == "C major"
    request = assessment.request
    assert request["same_length"] is True and request["length_seconds"] == 8.0
    assert request["tempo_bpm"] == pytest.approx(120.0, rel=0.01)
    assert request["key"] == "C major" and request["key_asked"] == "C major"
    assert request["mix"]["gain_sources"] == {"drums": "loudness-matched", "piano": "engine"}
    assert request["mix"]["stem_gains_db"]["piano"] == -3.0
    assert request["mix"]["true_peak_dbtp"] <= -1.0
    assert not [w for w in assessment.warnings if "tempo" in w or "chords" in w or "grid" in w]
    assert assessment.mix.audio.shape == (8 * SR, 2)
    assert true_peak_dbfs(assessment.mix.audio) <= -1.0


def test_a_drum_stem_shifted_off_the_grid_is_warned_about() -> None:
    assessment = assess(_stems(shift=0.1), CONTEXT)

    # 100 ms late on a 250 ms eighth-note grid (120 BPM).
    assert assessment.stems["drums"]["grid_offset_ms"] == pytest.approx(100.0, abs=5.0)
    assert any(w.startswith("drums: ") and "off the request's beat grid" in w for w in assessment.warnings)


def test_stems_of_different_lengths_are_warned_about() -> None:
    stems = [
        MixInput("drums", click_track(120.0, 4.0), None),
        MixInput("bass", click_track(120.0, 3.0), None),
    ]

    assessment = assess(stems, CONTEXT)

    assert assessment.request["same_length"] is False
    assert assessment.request["length_seconds"] == {"drums": 4.0, "bass": 3.0}
    assert "request: stems differ in length (drums 4 s, bass 3 s)" in assessment.warnings
    assert assessment.mix.audio.shape[0] == 4 * SR


def test_noise_is_warned_about_on_beat_and_chords() -> None:
    noise = np.random.default_rng(5).normal(0, 0.05, (8 * SR, 2)).astype(np.float32)

    assessment = assess([MixInput("bass", noise, None), MixInput("guitar", noise.copy(), None)], CONTEXT)

    assert any(w.startswith("bass: no steady beat") for w in assessment.warnings)
    assert any(w.startswith("guitar: follows the asked chords in") for w in assessment.warnings)
