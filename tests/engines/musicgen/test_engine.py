"""The engine end to end on tiny random checkpoints, through the real loading path."""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from stemforge.dsp.loudness import integrated_lufs
from stemforge.engines.base import EngineJob, run_batch
from stemforge.errors import ConfigurationError
from stemforge.music.chords import parse_chord
from stemforge.music.spec import SAMPLE_RATE, MusicSpec
from tests.engines.musicgen.conftest import FAST, chroma_fed

FRAME_RATE = 50


def _spec(**changes: Any) -> MusicSpec:
    values: dict[str, Any] = {"bpm": 120.0, "duration_seconds": 1.3, "seed": 7, "style": "funk"}
    values.update(changes)
    return MusicSpec(**values)


@pytest.fixture(params=["musicgen_engine", "melody_engine"])
def engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    engine = request.getfixturevalue(request.param)
    yield engine
    engine.on_forward = None
    engine.reconfigure(FAST)


def _record(engine: Any) -> list[tuple[int, int]]:
    shapes: list[tuple[int, int]] = []
    engine.on_forward = lambda ids: shapes.append(tuple(ids.shape))
    return shapes


def test_stems_are_44k1_stereo_of_the_requested_duration(engine: Any) -> None:
    spec = _spec(chord_progression=("Am", "F"))
    result = engine.generate(spec, ["drums", "bass"])
    assert [stem.stem_type for stem in result.stems] == ["drums", "bass"]
    for stem in result.stems:
        assert stem.engine == "musicgen"
        assert stem.audio.dtype == np.float32
        assert stem.audio.shape == (spec.num_frames, 2)
        assert np.isfinite(stem.audio).all() and np.abs(stem.audio).max() > 0.01
        assert -16.0 < integrated_lufs(stem.audio, SAMPLE_RATE) <= -13.5  # normalized to -14 LUFS
        assert "instrument: " + ("drums" if stem.stem_type == "drums" else "bass") in (stem.prompt or "")
        assert "chords: Am F" in (stem.prompt or "")
        assert isinstance(stem.info["seed"], int)
    assert result.stems[0].info["seed"] != result.stems[1].info["seed"]
    assert result.applied["key"] == "A minor"
    assert result.applied["chord_progression"] == ["Am", "F"]
    assert result.applied["chord_conditioning"] == ("chroma" if engine.loaded.is_melody else "text")


def test_same_request_same_audio_other_seed_other_audio(engine: Any) -> None:
    first = engine.generate(_spec(), ["piano"]).stems[0].audio
    again = engine.generate(_spec(), ["piano"]).stems[0].audio
    other = engine.generate(_spec(seed=8), ["piano"]).stems[0].audio
    assert np.array_equal(first, again)
    assert not np.allclose(first, other, atol=1e-3)


def test_a_request_sounds_the_same_alone_and_merged_with_others(engine: Any) -> None:
    job = EngineJob(_spec(), ("drums", "guitar"))
    # A longer request, a longer prompt, another temperature: none of it may leak into `job`.
    other = EngineJob(
        _spec(duration_seconds=2.2, seed=1, temperature=0.6, prompt="a much longer text " * 4), ("synth",)
    )
    alone = engine.generate_batch([job])[0]
    merged = engine.generate_batch([other, job])[1]
    for a, b in zip(alone.stems, merged.stems, strict=True):
        np.testing.assert_allclose(a.audio, b.audio, atol=1e-5)


def test_all_stems_of_all_requests_go_through_one_batch(engine: Any) -> None:
    shapes = _record(engine)
    jobs = [EngineJob(_spec(), ("drums", "bass")), EngineJob(_spec(seed=3, duration_seconds=1.0), ("piano",))]
    results = run_batch(engine, jobs)  # what the replica calls for a @serve.batch of requests
    assert [len(r.stems) for r in results] == [2, 1]
    assert results[1].stems[0].audio.shape == (SAMPLE_RATE, 2)
    rows = {rows for rows, _ in shapes}
    assert rows == {2 * 3 * 4}, "3 stems x 4 codebooks, doubled for guidance, in every forward pass"
    frames = round(1.3 * FRAME_RATE)
    assert len(shapes) == frames + 3  # one window: one pass per frame plus the delay pattern


def test_guidance_off_halves_the_batch(engine: Any) -> None:
    engine.reconfigure({**FAST, "guidance_scale": 1.0})
    shapes = _record(engine)
    engine.generate(_spec(duration_seconds=0.5), ["drums"])
    assert {rows for rows, _ in shapes} == {4}


def test_long_stems_are_generated_in_windows_and_stitched(engine: Any) -> None:
    engine.reconfigure({**FAST, "window_seconds": 1.0, "stride_seconds": 0.6})
    shapes = _record(engine)
    spec = _spec(duration_seconds=2.5)
    stem = engine.generate(spec, ["bass"]).stems[0]
    assert stem.audio.shape == (spec.num_frames, 2)
    # The first pass of each window feeds its prompt: nothing, then 0.4 s (20 frames) of the
    # previous window's tokens after the start token.
    first_passes = [length for _, length in shapes if length > 1]
    assert first_passes == [21, 21, 21]
    assert len(shapes) == (50 + 3) + 2 * (30 + 3) + (15 + 3)  # 125 frames: 50, then 30, 30 and 15 more
    # One codec decode over all windows: no silence or jump at the window boundaries.
    envelope = np.abs(stem.audio[:, 0]).reshape(-1, SAMPLE_RATE // 50).max(axis=1)
    for boundary_s in (1.0, 1.6, 2.2):
        i = int(boundary_s * 50)
        assert envelope[i - 2 : i + 2].min() > 0.05 * envelope.max()


def test_temperature_zero_is_greedy(engine: Any) -> None:
    greedy = [engine.generate(_spec(temperature=0.0, seed=s), ["drums"]).stems[0].audio for s in (1, 2)]
    np.testing.assert_array_equal(greedy[0], greedy[1])  # no randomness left for the seed to change


def test_nonsense_user_config_is_refused_and_changes_nothing(engine: Any) -> None:
    before = engine.config
    with pytest.raises(ConfigurationError):
        engine.reconfigure({"top_p": 2.0})
    assert engine.config == before


def test_tempo_is_measured_and_optionally_stretched(musicgen_engine: Any) -> None:
    try:
        musicgen_engine.reconfigure({"time_stretch_to_bpm": True})
        spec = _spec(duration_seconds=2.0)
        stem = musicgen_engine.generate(spec, ["drums"]).stems[0]
    finally:
        musicgen_engine.reconfigure(FAST)
    assert stem.audio.shape == (spec.num_frames, 2)
    assert stem.info["measured_bpm"] > 0
    assert "time_stretch_rate" in stem.info


def test_melody_is_conditioned_on_the_requested_chords(
    melody_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One chord per bar; a bar is 2 s at 120 BPM.
    spec = _spec(duration_seconds=4.0, chord_progression=("C", "F#"))
    chroma, _ = chroma_fed(monkeypatch, lambda: melody_engine.generate(spec, ["bass"]))
    seconds = np.arange(chroma.shape[0]) * 4096 / 32_000
    for symbol, (start, end) in (("C", (0.3, 1.7)), ("F#", (2.3, 3.7))):
        frames = chroma[(seconds > start) & (seconds < end)]
        in_chord = np.isin(frames.argmax(axis=1), sorted(parse_chord(symbol).pitch_classes))
        assert in_chord.mean() > 0.8, f"chroma of the {symbol} bar is not {symbol}'s pitch classes"


def test_progress_rises_with_the_decoding_steps_to_one_per_stem(engine: Any) -> None:
    seen: dict[str, list[float]] = {"drums": [], "bass": []}
    engine.generate(_spec(duration_seconds=1.0), ["drums", "bass"], progress=lambda s, f: seen[s].append(f))
    for fractions in seen.values():
        assert fractions == sorted(fractions)
        assert fractions[-1] == 1.0
        # One report per decoding step: a frame at 50 Hz, plus the codebook delay's tail.
        assert len({f for f in fractions if 0 < f < 1}) >= FRAME_RATE // 2


def test_merged_jobs_report_progress_each_to_their_own_reporter(engine: Any) -> None:
    seen: list[list[str]] = [[], []]
    jobs = [EngineJob(_spec(duration_seconds=0.5), ("drums",)), EngineJob(_spec(seed=8), ("bass", "piano"))]
    engine.generate_batch(jobs, [lambda s, f, i=i: seen[i].append(s) for i in range(2)])
    assert set(seen[0]) == {"drums"} and set(seen[1]) == {"bass", "piano"}
