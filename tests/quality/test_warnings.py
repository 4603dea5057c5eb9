import pytest

from stemforge.quality.bounds import QualityBounds
from stemforge.quality.warnings import request_warnings, stem_warnings

GOOD = {
    "tempo_bpm": 120.1,
    "tempo_confidence": 0.7,
    "tempo_relation": "1",
    "tempo_error_percent": 0.08,
    "grid_offset_ms": 6.0,
    "grid_coherence": 0.9,
    "chord_adherence": 1.0,
    "loudness_lufs": -14.0,
    "true_peak_dbtp": -1.2,
    "clipped_samples": 0,
    "silence_share": 0.0,
    "dc_offset": 0.0,
    "sub_20hz_share": 0.0,
}


def test_a_good_stem_has_no_warnings() -> None:
    assert stem_warnings("drums", GOOD, 120.0, QualityBounds()) == []


def test_a_stem_off_tempo_names_the_stem_the_value_and_the_bound() -> None:
    quality = GOOD | {"tempo_bpm": 115.2, "tempo_error_percent": -4.0}

    assert stem_warnings("drums", quality, 120.0, QualityBounds()) == [
        "drums: tempo 115.2 BPM, asked 120: -4.0 % (bound 2 %)"
    ]
    assert stem_warnings("drums", quality, 120.0, QualityBounds(tempo_tolerance_percent=5.0)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"grid_offset_ms": -90.0}, "drums: -90 ms off the request's beat grid (bound 75 ms)"),
        ({"chord_adherence": 0.1}, "drums: follows the asked chords in 10% of bars (bound 25%)"),
        ({"loudness_lufs": -40.0}, "drums: loudness -40.0 LUFS, outside -30 to -8 LUFS"),
        ({"loudness_lufs": None}, "drums: silent (no loudness above the -70 LUFS gate)"),
        ({"true_peak_dbtp": 0.3}, "drums: true peak +0.30 dBTP (bound -0.9 dBTP)"),
        ({"clipped_samples": 12}, "drums: 12 clipped samples (bound 0)"),
        ({"silence_share": 0.8}, "drums: 80% silent (bound 50%)"),
        ({"dc_offset": 0.05}, "drums: DC offset 0.0500 of full scale (bound 0.01)"),
        ({"sub_20hz_share": 0.2}, "drums: 20% of its energy below 20 Hz (bound 5%)"),
        ({"tempo_confidence": 0.05}, "drums: no steady beat (tempo confidence 0.05, bound 0.15)"),
    ],
)
def test_each_bound_has_its_warning(change: dict, expected: str) -> None:
    assert stem_warnings("drums", GOOD | change, 120.0, QualityBounds()) == [expected]


def test_an_unsteady_pad_is_not_warned_about_and_its_grid_not_judged() -> None:
    quality = GOOD | {"tempo_confidence": 0.05, "tempo_error_percent": 9.0, "grid_offset_ms": 120.0}

    assert stem_warnings("synth", quality, 120.0, QualityBounds()) == []


def test_a_scattered_grid_is_not_judged() -> None:
    quality = GOOD | {"grid_offset_ms": 120.0, "grid_coherence": 0.1}

    assert stem_warnings("guitar", quality, 120.0, QualityBounds()) == []


def test_request_warnings_for_length_grid_and_mix_peak() -> None:
    request = {
        "same_length": False,
        "length_seconds": {"drums": 2.0, "bass": 1.98},
        "grid_spread_ms": 110.0,
        "mix": {"true_peak_dbtp": -0.2},
    }

    assert request_warnings(request, QualityBounds()) == [
        "request: stems differ in length (drums 2 s, bass 1.98 s)",
        "request: stems' beat grids 110 ms apart (bound 75 ms)",
        "mix: true peak -0.20 dBTP (bound -0.9 dBTP)",
    ]
