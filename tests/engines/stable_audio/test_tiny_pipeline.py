"""The tiny random Stable Audio Open pipeline saves, reloads offline and runs like the real one."""

import os
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when huggingface_hub is first imported

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("torchsde")  # the real scheduler's noise sampler

from tests.support.tiny_stable_audio import HOP_LENGTH, SAMPLE_RATE, build_tiny_stable_audio  # noqa: E402

# torchsde's Brownian interval warns that the scheduler's last sigma (0) lies outside [sigma_min, sigma_max].
pytestmark = pytest.mark.filterwarnings("ignore:Should have:UserWarning")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from diffusers import StableAudioPipeline
    from huggingface_hub import constants

    folder = build_tiny_stable_audio(tmp_path_factory.mktemp("stable-audio") / "tiny-stable-audio")
    offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        pipe = StableAudioPipeline.from_pretrained(folder, dtype=torch.float32)
    finally:
        constants.HF_HUB_OFFLINE = offline
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_reloaded_pipeline_keeps_the_production_layout(pipeline: Any) -> None:
    assert pipeline.vae.config.sampling_rate == SAMPLE_RATE
    assert pipeline.vae.config.audio_channels == 2
    assert pipeline.vae.hop_length == HOP_LENGTH
    assert pipeline.transformer.config.in_channels == pipeline.vae.config.decoder_input_channels
    assert pipeline.transformer.config.sample_size * HOP_LENGTH / SAMPLE_RATE == pytest.approx(5.94, abs=0.01)
    assert type(pipeline.scheduler).__name__ == "CosineDPMSolverMultistepScheduler"


def test_two_steps_make_two_seconds_of_stereo(pipeline: Any) -> None:
    audio = pipeline(
        "funky slap bass, 120 BPM, E minor",
        num_inference_steps=2,
        audio_end_in_s=2.0,
        generator=torch.Generator().manual_seed(0),
    ).audios
    assert audio.shape == (1, 2, 88_200)
    assert torch.isfinite(audio).all()
    assert audio.abs().max() > 0


def test_latents_shorter_than_the_window_decode_to_their_own_length(pipeline: Any) -> None:
    frames = 50  # 2.32 s of the 5.94 s window
    channels = pipeline.transformer.config.in_channels
    latents = torch.randn(1, channels, frames, generator=torch.Generator().manual_seed(1))
    audio = pipeline(
        "drums",
        num_inference_steps=2,
        audio_end_in_s=frames * HOP_LENGTH / SAMPLE_RATE,
        latents=latents,
        generator=torch.Generator().manual_seed(0),
    ).audios
    assert audio.shape == (1, 2, frames * HOP_LENGTH)


def test_a_list_of_generators_makes_each_row_independent_of_its_batch(pipeline: Any) -> None:
    channels = pipeline.transformer.config.in_channels
    latents = torch.randn(3, channels, 40, generator=torch.Generator().manual_seed(2))
    prompts = ["bass groove", "drums only", "piano chords"]

    def run(rows: slice, seeds: list[int]) -> Any:
        return pipeline(
            prompts[rows],
            num_inference_steps=3,
            audio_end_in_s=40 * HOP_LENGTH / SAMPLE_RATE,
            latents=latents[rows],
            generator=[torch.Generator().manual_seed(seed) for seed in seeds],
        ).audios

    batch = run(slice(0, 3), [7, 8, 9])
    alone = run(slice(1, 2), [8])
    assert (batch[1] - alone[0]).abs().max() < 1e-4
