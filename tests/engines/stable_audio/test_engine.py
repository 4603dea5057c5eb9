"""The Stable Audio engine on a tiny random pipeline: the real loading path, shapes, seeds,
windows, batching and failures (its audio is noise; quality is the benchmark's business)."""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stemforge.engines.base import EngineJob, run_batch
from stemforge.engines.diffusion.windows import bar_seconds, plan_windows
from stemforge.engines.stable_audio.config import StableAudioConfig, guidance_for
from stemforge.errors import ConfigurationError, GenerationFailed
from stemforge.music.spec import SAMPLE_RATE, MusicSpec
from stemforge.settings import Settings

pytest.importorskip("torch")
pytest.importorskip("diffusers")

WINDOW = 128 * 2048 / 44_100  # the tiny pipeline's longest call, 5.94 s


def _spec(duration: float = 1.0, seed: int = 7, **changes: Any) -> MusicSpec:
    return MusicSpec(bpm=120.0, duration_seconds=duration, seed=seed, **changes)


class RecordingPipeline:
    """The real pipeline, with every call's prompts and latent shape written down."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(
            {
                "prompts": list(kwargs["prompt"]),
                "negative": list(kwargs["negative_prompt"]),
                "latents": tuple(kwargs["latents"].shape),
                "guidance": kwargs["guidance_scale"],
            }
        )
        return self._pipeline(**kwargs)


@pytest.fixture
def recorded(stable_audio_engine: Any, monkeypatch: pytest.MonkeyPatch) -> RecordingPipeline:
    recorder = RecordingPipeline(stable_audio_engine.loaded.pipeline)
    monkeypatch.setattr(stable_audio_engine.loaded, "pipeline", recorder)
    return recorder


@pytest.mark.parametrize("duration", [0.5, 2.5, WINDOW - 0.01, 13.0])
def test_stems_are_44k1_stereo_of_exactly_the_requested_length(
    stable_audio_engine: Any, duration: float
) -> None:
    result = stable_audio_engine.generate(_spec(duration), ["drums"])
    (stem,) = result.stems
    assert stem.audio.shape == (round(duration * SAMPLE_RATE), 2)
    assert stem.audio.dtype == np.float32
    assert np.isfinite(stem.audio).all()
    assert np.abs(stem.audio).max() > 0.01  # not silence
    assert stem.info["windows"] == len(plan_windows(duration, bar_seconds(120.0), WINDOW))
    assert (stem.info["windows"] > 1) == (duration > WINDOW)
    assert stem.engine == "stable_audio"


def test_the_latent_is_sized_to_the_stem_not_the_model_s_window(
    stable_audio_engine: Any, recorded: RecordingPipeline
) -> None:
    stable_audio_engine.generate(_spec(2.0), ["drums"])
    (call,) = recorded.calls
    channels, frames = call["latents"][1:]
    assert frames == int(np.ceil(2.0 * 44_100 / 2048))  # 44 latent frames, not 128
    assert channels == stable_audio_engine.latent_channels


def test_all_stems_and_windows_of_a_request_are_one_pipeline_call(
    stable_audio_engine: Any, recorded: RecordingPipeline
) -> None:
    result = stable_audio_engine.generate(_spec(9.0), ["drums", "synth", "other"])
    (call,) = recorded.calls
    windows = len(plan_windows(9.0, bar_seconds(120.0), WINDOW))
    assert windows > 1
    assert call["latents"][0] == 3 * windows  # three stems of several windows each
    assert [s.stem_type for s in result.stems] == ["drums", "synth", "other"]
    assert any("drum" in prompt for prompt in call["prompts"])
    # Each stem is steered away from the others' instruments.
    drums_negative = call["negative"][call["prompts"].index(result.stems[0].prompt)]
    assert "synthesizer" in drums_negative and "drums" not in drums_negative.split(", ")
    assert result.stems[0].negative_prompt == drums_negative


def test_merged_requests_share_a_call_and_a_stem_does_not_depend_on_its_batch_mates(
    stable_audio_engine: Any, recorded: RecordingPipeline
) -> None:
    alone = stable_audio_engine.generate(_spec(2.0, seed=11), ["bass"]).stems[0].audio
    recorded.calls.clear()
    merged = stable_audio_engine.generate_batch(
        [EngineJob(_spec(2.0, seed=11), ("drums", "bass")), EngineJob(_spec(2.0, seed=12), ("piano",))],
        None,
    )
    assert len(recorded.calls) == 1 and recorded.calls[0]["latents"][0] == 3
    np.testing.assert_allclose(merged[0].stems[1].audio, alone, atol=1e-5)
    assert not np.allclose(merged[0].stems[0].audio, merged[1].stems[0].audio)


def test_same_seed_same_audio_new_seed_new_audio(stable_audio_engine: Any) -> None:
    first = stable_audio_engine.generate(_spec(1.0, seed=5), ["drums"]).stems[0].audio
    again = stable_audio_engine.generate(_spec(1.0, seed=5), ["drums"]).stems[0].audio
    other = stable_audio_engine.generate(_spec(1.0, seed=6), ["drums"]).stems[0].audio
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 1e-3


@pytest.mark.parametrize(("temperature", "guidance"), [(0.0, 10.0), (1.0, 7.0), (2.0, 4.0)])
def test_temperature_sets_the_guidance_scale(
    stable_audio_engine: Any, recorded: RecordingPipeline, temperature: float, guidance: float
) -> None:
    assert guidance_for(StableAudioConfig(guidance_scale=7.0), temperature) == pytest.approx(guidance)
    result = stable_audio_engine.generate(_spec(0.5, temperature=temperature), ["drums"])
    assert recorded.calls[0]["guidance"] == pytest.approx(guidance)
    assert result.applied["stable_audio"]["guidance_scale"] == pytest.approx(guidance)


def test_requests_with_other_temperatures_get_their_own_call(
    stable_audio_engine: Any, recorded: RecordingPipeline
) -> None:
    stable_audio_engine.generate_batch(
        [
            EngineJob(_spec(1.0, temperature=0.5), ("drums",)),
            EngineJob(_spec(1.0, temperature=1.5), ("bass",)),
        ],
        None,
    )
    assert sorted(call["guidance"] for call in recorded.calls) == [5.5, 8.5]


def test_alignment_measures_and_reports_the_tempo(stable_audio_engine: Any) -> None:
    stable_audio_engine.reconfigure({"cpu_num_inference_steps": 2, "time_stretch_to_bpm": True})
    try:
        stem = stable_audio_engine.generate(_spec(3.0), ["drums"]).stems[0]
    finally:
        stable_audio_engine.reconfigure(
            {"cpu_num_inference_steps": 2, "measure_tempo": False, "time_stretch_to_bpm": False}
        )
    assert stem.audio.shape == (3 * SAMPLE_RATE, 2)
    assert stem.info["measured_bpm"] > 0
    assert "time_stretch_rate" in stem.info and "grid_shift_ms" in stem.info


def test_a_cpu_replica_says_it_renders_a_preview(stable_audio_engine: Any) -> None:
    status = stable_audio_engine.status()
    assert status.available
    assert "CPU preview: 2 denoising steps" in status.problems[0]
    details = stable_audio_engine.details()
    assert details["steps"] == 2 and details["preview"] is True
    assert details["window_seconds"] == pytest.approx(WINDOW, abs=0.01)
    assert stable_audio_engine.device == "cpu"


def test_non_finite_audio_fails_the_job_not_the_batch(
    stable_audio_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    vae = stable_audio_engine.loaded.pipeline.vae
    real_decode = vae.decode
    poisoned = {"left": 2}  # the first row's decode, in the merged batch and when run alone

    def decode(latent: Any) -> Any:
        output = real_decode(latent)
        if poisoned["left"]:
            poisoned["left"] -= 1
            output.sample[:] = torch.nan
        return output

    monkeypatch.setattr(vae, "decode", decode)
    results = run_batch(
        stable_audio_engine,
        [EngineJob(_spec(0.5, seed=1), ("drums",)), EngineJob(_spec(0.5, seed=2), ("bass",))],
    )
    # The merged batch failed on the first row; run alone, the first job fails, the second works.
    assert isinstance(results[0], GenerationFailed) and "not finite" in str(results[0])
    assert not isinstance(results[1], Exception) and np.isfinite(results[1].stems[0].audio).all()


def test_a_missing_checkpoint_fails_at_start_up_saying_where_it_looked(tmp_path: Path) -> None:
    from stemforge.engines.stable_audio import StableAudioEngine

    with pytest.raises(ConfigurationError) as failure:
        StableAudioEngine(Settings(stable_audio_model=str(tmp_path / "nowhere")))
    assert "STABLE_AUDIO_MODEL" in str(failure.value) and "no such folder" in str(failure.value)
    assert "hf download stabilityai/stable-audio-open-1.0" in str(failure.value)


def test_a_model_id_missing_from_the_cache_names_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    from stemforge.engines.stable_audio import StableAudioEngine

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigurationError) as failure:
        StableAudioEngine(Settings(stable_audio_model="stabilityai/stable-audio-open-1.0"))
    assert "is not in the Hugging Face cache at " + str(tmp_path) in str(failure.value)


def test_another_pipeline_is_refused(tmp_path: Path) -> None:
    from stemforge.engines.stable_audio import StableAudioEngine

    (tmp_path / "model_index.json").write_text('{"_class_name": "AudioLDM2Pipeline"}')
    with pytest.raises(ConfigurationError, match="'AudioLDM2Pipeline' pipeline; this engine loads Stable"):
        StableAudioEngine(Settings(stable_audio_model=str(tmp_path)))


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from stemforge.engines.stable_audio import StableAudioEngine

    monkeypatch.setitem(sys.modules, "torchsde", None)
    with pytest.raises(ConfigurationError, match=r"stemforge\[stable-audio\]"):
        StableAudioEngine(Settings())


def test_the_registry_builds_it(tiny_stable_audio: Path) -> None:
    from stemforge.engines.registry import create_engine

    engine = create_engine("stable_audio", Settings(stable_audio_model=str(tiny_stable_audio)))
    assert engine.name == "stable_audio" and engine.batches
