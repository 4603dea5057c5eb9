"""The procedural engine end to end: measured by listening to its audio (librosa tempo, chroma
chord recovery, bass pitch on downbeats, loudness meters), not by reading its notes."""

import io
import json

import numpy as np
import pretty_midi
import pytest
from scipy.signal import butter, resample_poly, sosfilt

from stemforge.dsp.analysis import bass_chord_tone_ratio, chord_match_ratio, pitch_class_at
from stemforge.dsp.loudness import integrated_lufs, true_peak_dbfs
from stemforge.dsp.soundfont import find_soundfont
from stemforge.dsp.tempo import estimate_bpm
from stemforge.engines.procedural import ProceduralEngine
from stemforge.errors import ConfigurationError
from stemforge.music.plan import build_plan
from stemforge.music.spec import SAMPLE_RATE, STEM_TYPES, MusicSpec
from stemforge.settings import Settings

HARMONIC = ("piano", "guitar", "synth")


@pytest.fixture(scope="module")
def engine() -> ProceduralEngine:
    return ProceduralEngine(Settings())


@pytest.fixture(scope="module")
def normalized_engine() -> ProceduralEngine:
    """Every stem at the loudness target on its own (the band's balance is then mix_gain_db)."""
    engine = ProceduralEngine(Settings())
    engine.reconfigure({"stem_levels": "normalized"})
    return engine


@pytest.fixture(scope="module")
def dsp_engine() -> ProceduralEngine:
    engine = ProceduralEngine(Settings())
    engine.reconfigure({"soundfont": "none"})
    return engine


def _stems(engine, spec, stems):
    return {s.stem_type: s.audio for s in engine.generate(spec, stems).stems}


@pytest.mark.parametrize("bpm", [60.0, 90.0, 128.0, 170.0, 200.0])
@pytest.mark.parametrize("style", ["rock", "house", "jazz", "hip-hop", "reggae"])
def test_drum_tempo_within_one_percent(engine, style, bpm):
    spec = MusicSpec(bpm=bpm, duration_seconds=16.0 if bpm < 100 else 10.0, seed=3, style=style)
    drums = _stems(engine, spec, ["drums"])["drums"]
    assert estimate_bpm(drums, SAMPLE_RATE, start_bpm=bpm) == pytest.approx(bpm, rel=0.01)


@pytest.mark.parametrize(("style", "bpm"), [("pop", 75.0), ("funk", 112.0), ("metal", 185.0)])
def test_mix_tempo_within_one_percent(engine, style, bpm):
    spec = MusicSpec(bpm=bpm, duration_seconds=12.0, seed=8, style=style)
    mix = sum(_stems(engine, spec, list(STEM_TYPES)).values())
    assert estimate_bpm(mix, SAMPLE_RATE, start_bpm=bpm) == pytest.approx(bpm, rel=0.01)


PROGRESSIONS = {
    "triads": ("C", "G", "Am", "F"),
    "sevenths": ("Dm7", "G7", "Cmaj7", "A7", "Fmaj9", "E7sus4"),
    "colour": ("Bdim", "Caug", "Dsus2", "G/B", "Am/G", "F#m7b5", "Ebmaj7", "Db9"),
}
CHORD_STYLES = ("pop", "rock", "jazz", "house", "lo-fi", "funk", "metal", "reggae", "ballad")
_chord_scores: list[float] = []
_bass_scores: list[float] = []


@pytest.mark.parametrize("progression", list(PROGRESSIONS))
@pytest.mark.parametrize("style", CHORD_STYLES)
def test_chords_and_bass_follow_the_progression(normalized_engine, style, progression):
    spec = MusicSpec(
        bpm=110.0,
        duration_seconds=16 * 240 / 110,
        seed=21,
        style=style,
        chord_progression=PROGRESSIONS[progression],
    )
    plan = build_plan(spec)
    # Equal-loudness stems: the chord is heard in the harmony whatever the band's balance.
    stems = _stems(normalized_engine, spec, [*HARMONIC, "bass"])
    chords = plan.chords[: plan.ending_bar]
    harmonic = sum(stems[s] for s in HARMONIC)
    chord_ratio = chord_match_ratio(harmonic, SAMPLE_RATE, plan.bar_seconds, chords)
    bass_ratio = bass_chord_tone_ratio(
        stems["bass"], SAMPLE_RATE, plan.bar_seconds, plan.beat_seconds, chords
    )
    _chord_scores.append(chord_ratio)
    _bass_scores.append(bass_ratio)
    assert chord_ratio >= 0.8
    assert bass_ratio >= 0.8


def test_over_the_grid_chords_and_bass_match_in_nine_bars_of_ten():
    if len(_chord_scores) < len(PROGRESSIONS) * len(CHORD_STYLES):
        pytest.skip("runs after the grid above")
    assert np.mean(_chord_scores) >= 0.9
    assert np.mean(_bass_scores) >= 0.9


@pytest.mark.parametrize("style", ["pop", "metal", "lo-fi"])
def test_every_stem_is_loud_enough_under_the_ceiling_and_aligned(engine, style):
    spec = MusicSpec(bpm=123.0, duration_seconds=9.7, seed=2, style=style)
    result = engine.generate(spec, list(STEM_TYPES))
    assert [s.stem_type for s in result.stems] == list(STEM_TYPES)
    for stem in result.stems:
        audio = stem.audio
        assert audio.dtype == np.float32 and audio.shape == (spec.num_frames, 2)
        # Each stem at its level in the band: the target plus its mix offset.
        expected = -14.0 + stem.info["mix_offset_db"]
        assert integrated_lufs(audio, SAMPLE_RATE) == pytest.approx(expected, abs=1.0), stem.stem_type
        assert stem.mix_gain_db == 0.0
        assert 20 * np.log10(np.max(np.abs(resample_poly(audio, 4, 1, axis=0)))) < -1.0, stem.stem_type
        assert np.all(np.abs(audio.mean(axis=0)) < 1e-4)


def test_loudness_target_is_configurable(engine):
    quiet = ProceduralEngine(Settings())
    quiet.reconfigure({"target_lufs": -20.0})
    (piano,) = quiet.generate(MusicSpec(bpm=100.0, duration_seconds=6.0, seed=1), ["piano"]).stems
    expected = -20.0 + piano.info["mix_offset_db"]
    assert integrated_lufs(piano.audio, SAMPLE_RATE) == pytest.approx(expected, abs=1.0)


def test_same_seed_same_bytes_whatever_else_is_requested(engine):
    spec = MusicSpec(bpm=97.0, duration_seconds=6.0, seed=42, style="funk", temperature=1.5)
    alone = _stems(engine, spec, ["bass"])["bass"]
    together = _stems(engine, spec, ["drums", "vocals", "bass"])["bass"]
    again = _stems(engine, spec, ["bass"])["bass"]
    assert alone.tobytes() == together.tobytes() == again.tobytes()


@pytest.mark.parametrize("stem", ["drums", "vocals", "guitar"])
def test_another_seed_is_another_take(engine, stem):
    first = _stems(engine, MusicSpec(bpm=110.0, duration_seconds=6.0, seed=1), [stem])[stem]
    second = _stems(engine, MusicSpec(bpm=110.0, duration_seconds=6.0, seed=2), [stem])[stem]
    assert not np.array_equal(first, second)


def test_temperature_zero_plays_plain_and_two_plays_variations(engine):
    def variations(temperature: float) -> int:
        spec = MusicSpec(bpm=120.0, duration_seconds=30.0, seed=5, temperature=temperature)
        return sum(s.info["variations"] for s in engine.generate(spec, ["drums", "bass", "piano"]).stems)

    assert variations(0.0) == 0
    assert variations(2.0) >= 10


def test_midi_and_song_plan_are_attached(engine):
    spec = MusicSpec(bpm=100.0, duration_seconds=8.0, seed=4, style="jazz", chord_progression=("Dm7", "G7"))
    result = engine.generate(spec, ["drums", "bass"])
    for stem in result.stems:
        (midi,) = stem.attachments
        assert (midi.kind, midi.extension, midi.content_type) == ("midi", "mid", "audio/midi")
        song = pretty_midi.PrettyMIDI(io.BytesIO(midi.data))
        assert len(song.instruments[0].notes) == stem.info["notes"]
    (plan,) = result.attachments
    assert (plan.kind, plan.extension, plan.content_type) == ("song_plan", "json", "application/json")
    data = json.loads(plan.data)
    assert data["chord_progression"] == ["Dm7", "G7"] and data["style"] == "jazz"
    applied = result.applied
    assert applied["style"] == "jazz" and applied["chord_progression"] == ["Dm7", "G7"]
    assert applied["key"] == "C major" and applied["sections"] and json.dumps(applied)


def test_without_a_soundfont_synthesis_still_keeps_time_and_loudness(dsp_engine):
    spec = MusicSpec(bpm=140.0, duration_seconds=10.0, seed=6, style="edm")
    result = dsp_engine.generate(spec, ["drums", "bass", "piano", "vocals"])
    assert result.applied["renderer"] == "dsp"
    audio = {s.stem_type: s.audio for s in result.stems}
    assert all(s.info["renderer"] == "dsp" for s in result.stems)
    assert estimate_bpm(audio["drums"], SAMPLE_RATE, start_bpm=140.0) == pytest.approx(140.0, rel=0.01)
    for stem in result.stems:
        expected = -14.0 + stem.info["mix_offset_db"]
        assert integrated_lufs(stem.audio, SAMPLE_RATE) == pytest.approx(expected, abs=1.0)


@pytest.mark.skipif(find_soundfont() is None, reason="no General MIDI SoundFont installed")
def test_the_soundfont_is_used_when_installed(engine):
    result = engine.generate(MusicSpec(bpm=120.0, duration_seconds=3.0, seed=1), ["piano", "bass"])
    assert result.applied["renderer"].startswith("soundfont:")
    assert {s.info["renderer"] for s in result.stems} == {"soundfont"}


@pytest.mark.parametrize(
    "config",
    [
        {"target_lufs": 3},
        {"target_lufs": "loud"},
        {"peak_ceiling_dbfs": 0.5},
        {"soundfont": "/no/such.sf2"},
        {"effects": "yes"},
        {"reverb": 1},
    ],
)
def test_nonsense_configuration_is_refused(config):
    with pytest.raises(ConfigurationError):
        ProceduralEngine(Settings()).reconfigure(config)


def test_status_says_when_the_soundfont_is_missing_and_what_it_fell_back_to(dsp_engine):
    status = dsp_engine.status()
    assert status.available
    assert status.problems == ("SoundFont disabled by user_config.soundfont: playing DSP voices instead",)


@pytest.mark.skipif(find_soundfont() is None, reason="no General MIDI SoundFont installed")
def test_status_has_no_problem_with_the_soundfont_installed(engine):
    assert engine.status().problems == ()


def test_progress_reports_each_stem_as_it_is_rendered(engine):
    seen = []
    engine.generate(
        MusicSpec(bpm=120, duration_seconds=1.0, seed=3),
        ["drums", "bass"],
        progress=lambda s, f: seen.append((s, f)),
    )
    assert seen == [("drums", 0.0), ("drums", 1.0), ("bass", 0.0), ("bass", 1.0)]


# --- the band as a mix (issue 15): clean signal, gain staging, stereo, MIDI = audio -------------

BAND_TEMPI = {"pop": 118.0, "rock": 132.0, "metal": 170.0, "hip-hop": 88.0, "house": 124.0, "edm": 128.0,
              "disco": 118.0, "funk": 104.0, "jazz": 140.0, "reggae": 76.0, "lo-fi": 78.0, "ballad": 66.0,
              "blues": 96.0}  # fmt: skip
_LOW = butter(4, 20.0, "lowpass", fs=SAMPLE_RATE, output="sos")


@pytest.fixture(scope="module")
def band(engine):
    """Every style's seven stems, 12 s at a tempo typical of the style (a grid over both)."""
    return {
        style: engine.generate(
            MusicSpec(bpm=bpm, duration_seconds=8.0, seed=5, style=style), list(STEM_TYPES)
        ).stems
        for style, bpm in BAND_TEMPI.items()
    }


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


@pytest.mark.parametrize("style", list(BAND_TEMPI))
def test_every_stem_is_clean_no_dc_no_sub_sonic_drift_no_step_at_its_edges(band, style):
    for stem in band[style]:
        audio = stem.audio.astype(np.float64)
        mono = audio.mean(axis=1)
        sub = sosfilt(_LOW, mono)
        assert _rms_db(sub) - _rms_db(mono) < -25.0, stem.stem_type  # sub-20 Hz energy share
        assert np.all(np.abs(audio.mean(axis=0)) < 1e-4), stem.stem_type
        assert np.max(np.abs(audio[:2])) < 1e-3 and np.max(np.abs(audio[-2:])) < 1e-3, stem.stem_type


@pytest.mark.parametrize("style", list(BAND_TEMPI))
def test_the_stems_summed_at_unity_are_a_balanced_mix_near_the_target(band, style):
    stems = {s.stem_type: s for s in band[style]}
    assert all(s.mix_gain_db == 0.0 for s in stems.values())
    mix = sum(s.audio.astype(np.float64) for s in stems.values()).astype(np.float32)
    loudness, peak = integrated_lufs(mix, SAMPLE_RATE), true_peak_dbfs(mix)
    assert -15.5 <= loudness <= -12.5 and peak < -1.0, (loudness, peak)
    level = {name: integrated_lufs(s.audio, SAMPLE_RATE) for name, s in stems.items()}
    for backing in ("synth", "other"):  # drums and bass carry the song, pads sit behind
        if stems[backing].info["instrument"] in ("warm pad", "polysynth", "string ensemble", "slow strings"):
            assert min(level["drums"], level["bass"]) > level[backing] + 3.0, (backing, level)
    assert all(value > -30.0 for value in level.values()), level  # nothing too quiet to use


def test_normalized_stem_levels_keep_each_stem_at_the_target_and_report_its_mix_gain(normalized_engine):
    spec = MusicSpec(bpm=110.0, duration_seconds=6.0, seed=3, style="funk")
    for stem in normalized_engine.generate(spec, ["drums", "bass", "synth"]).stems:
        assert integrated_lufs(stem.audio, SAMPLE_RATE) == pytest.approx(-14.0, abs=1.0)
        assert stem.mix_gain_db == stem.info["mix_offset_db"] < 0.0


def test_the_drum_kit_is_stereo(band):
    drums = next(s for s in band["rock"] if s.stem_type == "drums").audio
    assert np.corrcoef(drums[:, 0], drums[:, 1])[0, 1] < 0.95


@pytest.mark.parametrize("style", ["pop", "reggae"])
def test_the_midi_and_the_audio_agree_note_for_note(engine, style):
    spec = MusicSpec(bpm=96.0, duration_seconds=10.0, seed=4, style=style, temperature=1.5)
    (bass,) = engine.generate(spec, ["bass"]).stems
    (track,) = pretty_midi.PrettyMIDI(io.BytesIO(bass.attachments[0].data)).instruments
    assert len(track.notes) == bass.info["notes"]
    heard = []
    for note in track.notes:
        if note.end - note.start >= 0.15:
            window = min(0.25, note.end - note.start - 0.04)
            heard.append(
                pitch_class_at(bass.audio, SAMPLE_RATE, note.start + 0.03, window) == note.pitch % 12
            )
    assert len(heard) >= 8 and np.mean(heard) >= 0.85


def test_acoustic_in_the_prompt_is_another_band(engine):
    plain = MusicSpec(bpm=120.0, duration_seconds=4.0, seed=2, style="rock")
    acoustic = MusicSpec(bpm=120.0, duration_seconds=4.0, seed=2, style="rock", prompt="acoustic")
    for stem in ("guitar", "bass", "drums"):
        assert (
            _stems(engine, plain, [stem])[stem].tobytes() != _stems(engine, acoustic, [stem])[stem].tobytes()
        )


def test_the_applied_time_signature_is_the_requested_one(engine):
    result = engine.generate(
        MusicSpec(bpm=90.0, duration_seconds=4.0, seed=1, time_signature="6/8"), ["drums"]
    )
    assert result.applied["time_signature"] == "6/8"
