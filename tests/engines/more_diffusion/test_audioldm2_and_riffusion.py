"""The AudioLDM 2 and Riffusion engines on tiny random pipelines of the real architectures,
through the real loading path: lengths, windows, seeds, batching, what /health is told, and the
start-up failures. Their audio is noise; the spectrogram codec has its own tests."""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stemforge.engines.base import EngineJob
from stemforge.engines.diffusion.windows import bar_seconds, plan_windows
from stemforge.errors import ConfigurationError
from stemforge.music.spec import SAMPLE_RATE, MusicSpec
from stemforge.settings import Settings

pytest.importorskip("torch")
pytest.importorskip("diffusers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAST: dict[str, Any] = {"cpu_num_inference_steps": 2, "measure_tempo": False, "time_stretch_to_bpm": False}


def _audioldm2(folder: Path) -> Path:
    from tests.support.tiny_audioldm2 import build_tiny_audioldm2

    return build_tiny_audioldm2(folder)


def _riffusion(folder: Path) -> Path:
    from tests.support.tiny_riffusion import build_tiny_riffusion

    return build_tiny_riffusion(folder)


# name, builder, settings field, user_config beyond FAST, window in seconds
ENGINES: dict[str, tuple[Callable[[Path], Path], str, dict[str, Any], float]] = {
    "audioldm2": (_audioldm2, "audioldm2_model", {}, 10.24),
    "riffusion": (_riffusion, "riffusion_model", {"griffin_lim_iterations": 2, "tile_columns": 256}, 2.56),
}


@pytest.fixture(scope="module", params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from stemforge.engines.registry import create_engine

    build, field, config, _ = ENGINES[request.param]
    folder = build(tmp_path_factory.mktemp(request.param) / "tiny")
    built = create_engine(request.param, Settings(**{field: str(folder)}))
    built.reconfigure({**FAST, **config})
    return built


def _spec(duration: float = 1.0, seed: int = 7) -> MusicSpec:
    return MusicSpec(bpm=120.0, duration_seconds=duration, seed=seed)


class Calls:
    """Counts pipeline calls and their batch sizes, passing everything else through."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def __call__(self, **kwargs: Any) -> Any:
        self.batches.append(kwargs["latents"].shape[0])
        return self._pipeline(**kwargs)


def test_stems_are_44k1_stereo_of_exactly_the_requested_length_across_windows(engine: Any) -> None:
    window = ENGINES[engine.name][3]
    assert engine.max_seconds == pytest.approx(window)
    for duration in (0.5, window * 1.8):
        (stem,) = engine.generate(_spec(duration), ["drums"]).stems
        assert stem.audio.shape == (round(duration * SAMPLE_RATE), 2)
        assert np.isfinite(stem.audio).all() and np.abs(stem.audio).max() > 0.01
        assert stem.info["windows"] == len(plan_windows(duration, bar_seconds(120.0), window))
        assert stem.engine == engine.name


def test_a_request_is_one_call_and_a_stem_does_not_depend_on_its_batch_mates(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = engine.generate(_spec(1.0, seed=4), ["bass"]).stems[0].audio
    calls = Calls(engine.loaded.pipeline)
    monkeypatch.setattr(engine.loaded, "pipeline", calls)
    merged = engine.generate_batch(
        [EngineJob(_spec(1.0, seed=4), ("drums", "bass")), EngineJob(_spec(1.0, seed=5), ("piano",))], None
    )
    assert calls.batches == [3]
    # Equal up to float rounding (batched matrix products; Riffusion's 8-bit image quantisation
    # turns a rounding into a pixel step now and then): a batch mate's influence is far larger.
    difference = np.linalg.norm(merged[0].stems[1].audio - alone) / np.linalg.norm(alone)
    assert difference < 1e-3
    assert not np.allclose(merged[0].stems[0].audio, merged[0].stems[1].audio)


def test_same_seed_same_audio_new_seed_new_audio(engine: Any) -> None:
    first = engine.generate(_spec(0.5, seed=1), ["synth"]).stems[0].audio
    np.testing.assert_array_equal(first, engine.generate(_spec(0.5, seed=1), ["synth"]).stems[0].audio)
    assert np.abs(first - engine.generate(_spec(0.5, seed=2), ["synth"]).stems[0].audio).mean() > 1e-4


def test_health_is_told_the_native_rate_and_bandwidth(engine: Any) -> None:
    details = engine.details()
    expected = {"audioldm2": (16_000, 8_000), "riffusion": (44_100, 10_000)}[engine.name]
    assert (details["native_sample_rate"], details["bandwidth_hz"]) == expected
    assert details["preview"] is True and details["steps"] == 2
    assert "CPU preview" in engine.status().problems[0]


def test_the_prompts_come_from_the_shared_builder(engine: Any) -> None:
    result = engine.generate(_spec(0.5), ["guitar"])
    assert "120 BPM" in result.stems[0].prompt and "guitar" in result.stems[0].prompt
    assert "drums" in result.stems[0].negative_prompt
    assert result.applied[engine.name]["steps"] == 2


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_missing_checkpoint_fails_at_start_up_saying_how_to_provide_it(name: str, tmp_path: Path) -> None:
    from stemforge.engines.registry import create_engine

    field = ENGINES[name][1]
    with pytest.raises(ConfigurationError) as failure:
        create_engine(name, Settings(**{field: str(tmp_path / "nowhere")}))
    assert f"{field.upper()}=" in str(failure.value) and "no such folder" in str(failure.value)
    assert "hf download" in str(failure.value)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_folder_of_another_pipeline_is_refused(name: str, tmp_path: Path) -> None:
    from stemforge.engines.registry import create_engine

    (tmp_path / "model_index.json").write_text('{"_class_name": "StableAudioPipeline"}')
    with pytest.raises(ConfigurationError, match="'StableAudioPipeline' pipeline"):
        create_engine(name, Settings(**{ENGINES[name][1]: str(tmp_path)}))


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_missing_packages_name_the_extra(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from stemforge.engines.registry import create_engine

    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ConfigurationError, match=rf"stemforge\[{name}\]"):
        create_engine(name, Settings())


def test_audioldm2_s_language_model_loop_works_on_transformers_5_and_matches_diffusers_own(
    tmp_path: Path,
) -> None:
    import types

    import torch
    from diffusers import AudioLDM2Pipeline
    from transformers.generation.utils import GenerationMixin

    from stemforge.engines.audioldm2.compat import enable_language_model_generation

    folder = _audioldm2(tmp_path / "tiny")
    ours, theirs = AudioLDM2Pipeline.from_pretrained(folder), AudioLDM2Pipeline.from_pretrained(folder)
    with pytest.raises(AttributeError, match="_update_model_kwargs_for_generation"):
        ours(prompt="drums", num_inference_steps=1, audio_length_in_s=0.5)
    assert enable_language_model_generation(ours) is True
    assert enable_language_model_generation(ours) is False  # once is enough
    # diffusers' own (cached) loop, given back the helper transformers 5 took away.
    model = theirs.language_model
    model._update_model_kwargs_for_generation = types.MethodType(
        GenerationMixin._update_model_kwargs_for_generation, model
    )
    with torch.inference_mode():
        mine = ours.encode_prompt(["solo drums, 120 BPM"], "cpu", 1, False)[2]
        reference = theirs.encode_prompt(["solo drums, 120 BPM"], "cpu", 1, False)[2]
    torch.testing.assert_close(mine, reference, atol=1e-5, rtol=1e-4)
    audio = ours(prompt="drums", num_inference_steps=1, audio_length_in_s=0.5).audios
    assert np.isfinite(audio).all()
