"""The tiny random AudioLDM 2 and Riffusion pipelines save, reload offline and run like the real ones.

They also pin down what the engines rely on: the duration and latent maths, batch rows that do not
depend on their batch mates, and (AudioLDM 2) what transformers 5 broke and how to get around it.
"""

import os
from pathlib import Path
from typing import Any

import pytest

from stemforge.engines.audioldm2.compat import enable_language_model_generation

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when huggingface_hub is first imported

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
np = pytest.importorskip("numpy")

from tests.support import tiny_audioldm2, tiny_riffusion  # noqa: E402

# diffusers' own GPT-2 loop passes ``past_key_values=None`` (deprecated in transformers 5, removal
# announced for 5.40); the engine's loop (stemforge/engines/audioldm2/compat.py) does not.
pytestmark = pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated:FutureWarning")


def _load_offline(pipeline_class: Any, folder: Path) -> Any:
    from huggingface_hub import constants

    offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        pipe = pipeline_class.from_pretrained(folder)
    finally:
        constants.HF_HUB_OFFLINE = offline
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generators(seeds: list[int]) -> list[Any]:
    return [torch.Generator().manual_seed(seed) for seed in seeds]


# --- AudioLDM 2 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audioldm2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from diffusers import AudioLDM2Pipeline

    folder = tiny_audioldm2.build_tiny_audioldm2(tmp_path_factory.mktemp("audioldm2") / "tiny-audioldm2")
    pipe = _load_offline(AudioLDM2Pipeline, folder)
    enable_language_model_generation(pipe)
    return pipe


def _audioldm2_latents(seconds: float, seeds: list[int]) -> Any:
    shape = tiny_audioldm2.latent_shape(seconds)
    return torch.cat([torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in seeds])


def test_audioldm2_reloads_with_the_production_layout(audioldm2: Any) -> None:
    vocoder = audioldm2.vocoder.config
    assert vocoder.sampling_rate == 16_000
    assert vocoder.model_in_dim == 64
    assert int(np.prod(vocoder.upsample_rates)) == tiny_audioldm2.HOP_LENGTH == 160
    assert audioldm2.vae_scale_factor == 4
    assert audioldm2.unet.config.in_channels == audioldm2.vae.config.latent_channels == 8
    assert type(audioldm2.language_model).__name__ == "GPT2Model"  # as in the real checkpoints
    assert audioldm2.language_model.config.max_new_tokens == 8
    assert type(audioldm2.scheduler).__name__ == "DDIMScheduler"
    assert audioldm2.scheduler.config.beta_start == 0.0015
    assert audioldm2.scheduler.config.beta_end == 0.0195
    assert type(audioldm2.tokenizer).__name__ == "RobertaTokenizer"
    assert type(audioldm2.tokenizer_2).__name__ == "T5Tokenizer"
    assert audioldm2.tokenizer_2.model_max_length == 128
    assert type(audioldm2.feature_extractor).__name__ == "ClapFeatureExtractor"
    # The default length: sample_size latent rows x 4 x 10 ms.
    assert audioldm2.unet.config.sample_size * 4 * 160 / 16_000 == pytest.approx(10.24)


def test_audioldm2_two_steps_make_two_seconds_at_16_khz(audioldm2: Any) -> None:
    audio = audioldm2(
        "funky slap bass, 120 BPM, E minor",
        num_inference_steps=2,
        audio_length_in_s=2.0,
        generator=torch.Generator().manual_seed(0),
    ).audios
    assert audio.shape == (1, 32_000)
    assert np.isfinite(audio).all()
    assert 0 < np.abs(audio).max() <= 1


@pytest.mark.parametrize("seconds", [2.0, 2.01, 5.12, 10.0])
def test_audioldm2_latent_shape_follows_the_formula(audioldm2: Any, seconds: float) -> None:
    latents = audioldm2(
        "drums", num_inference_steps=1, audio_length_in_s=seconds, output_type="latent"
    ).audios
    assert tuple(latents.shape) == tiny_audioldm2.latent_shape(seconds)
    assert tiny_audioldm2.latent_shape(10.0) == (1, 8, 250, 16)


def test_audioldm2_language_model_loop_under_transformers_5(audioldm2: Any) -> None:
    """The engine's GPT-2 loop (``audioldm2.compat``, which diffusers' own needs under transformers
    5: see tests/engines/more_diffusion) computes what the written-out loop does, padding included."""
    embeds = torch.randn(
        2, 5, audioldm2.language_model.config.n_embd, generator=torch.Generator().manual_seed(0)
    )
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[1, 3] = 0
    model = audioldm2.language_model
    with torch.no_grad():
        expected = tiny_audioldm2.generate_states(audioldm2, embeds, mask)
        got = audioldm2.generate_language_model(embeds, attention_mask=mask, max_new_tokens=8)
    assert got.shape == (2, 8, model.config.n_embd)
    torch.testing.assert_close(got, expected)


def test_audioldm2_rows_with_their_own_embeddings_ignore_their_batch_mates(audioldm2: Any) -> None:
    prompts = ["a", "walking bass line", "warm electric piano chords, E minor"]
    negatives = ["noise", "low quality", "drums"]

    def call(rows: list[int], seeds: list[int]) -> Any:
        embeddings = tiny_audioldm2.per_row_embeddings(
            audioldm2, [prompts[i] for i in rows], [negatives[i] for i in rows]
        )
        return audioldm2(
            **embeddings,
            num_inference_steps=2,
            audio_length_in_s=2.0,
            latents=_audioldm2_latents(2.0, seeds),
            generator=_generators(seeds),
            output_type="latent",
        ).audios

    batch, alone = call([0, 1, 2], [10, 11, 12]), call([1], [11])
    assert batch.shape == (3, *tiny_audioldm2.latent_shape(2.0)[1:])
    torch.testing.assert_close(batch[1], alone[0], atol=1e-4, rtol=1e-4)
    assert (batch[0] - batch[1]).abs().max() > 1


def test_audioldm2_plain_batches_couple_rows_through_t5_padding(audioldm2: Any) -> None:
    """diffusers pads the batch's T5 tokens to its longest prompt, and GPT-2 sees that padding: with
    prompts of different token lengths a row changes with its batch mates, even with its own
    generator and latents. Prompts of one length do not (that is the only coupling)."""

    def call(prompts: list[str], seeds: list[int]) -> Any:
        return audioldm2(
            prompts,
            negative_prompt=["noise"] * len(prompts),
            num_inference_steps=2,
            audio_length_in_s=2.0,
            latents=_audioldm2_latents(2.0, seeds),
            generator=_generators(seeds),
            output_type="latent",
        ).audios

    alone = call(["bass"], [11])
    same_length = call(["drum", "bass", "keys"], [10, 11, 12])
    torch.testing.assert_close(same_length[1], alone[0], atol=1e-4, rtol=1e-4)
    mixed_lengths = call(["a", "bass", "warm electric piano chords"], [10, 11, 12])
    assert (mixed_lengths[1] - alone[0]).abs().max() > 1e-2


def test_audioldm2_negative_prompts_are_a_list_like_the_prompts(audioldm2: Any) -> None:
    def call(negative: Any) -> Any:
        return audioldm2(
            ["funky bass"],
            negative_prompt=negative,
            num_inference_steps=2,
            audio_length_in_s=2.0,
            generator=torch.Generator().manual_seed(3),
        ).audios

    assert np.abs(call(["noise"]) - call(["drums"])).max() > 0
    with pytest.raises(TypeError, match="same type"):
        call("noise")  # a str negative prompt with a list of prompts is refused


# --- Riffusion (Stable Diffusion v1.5 layout) ----------------------------------------------------


@pytest.fixture(scope="module")
def riffusion(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from diffusers import StableDiffusionPipeline

    folder = tiny_riffusion.build_tiny_riffusion(tmp_path_factory.mktemp("riffusion") / "tiny-riffusion")
    return _load_offline(StableDiffusionPipeline, folder)


def test_riffusion_reloads_with_the_production_layout(riffusion: Any) -> None:
    assert riffusion.vae_scale_factor == 8
    assert riffusion.unet.config.sample_size * riffusion.vae_scale_factor == 512
    assert riffusion.unet.config.in_channels == riffusion.vae.config.latent_channels == 4
    assert riffusion.tokenizer.model_max_length == 77
    assert type(riffusion.tokenizer).__name__ == "CLIPTokenizer"
    assert type(riffusion.scheduler).__name__ == "PNDMScheduler"
    assert riffusion.safety_checker is None


@pytest.mark.parametrize("width", [512, 256])
def test_riffusion_two_steps_paint_a_512_tall_image(riffusion: Any, width: int) -> None:
    images = riffusion(
        "solo piano, 120 BPM",
        height=512,
        width=width,
        num_inference_steps=2,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert images.shape == (1, 512, width, 3)
    assert np.isfinite(images).all()
    assert 0 <= images.min() <= images.max() <= 1
    assert images.std() > 0


def test_riffusion_rows_with_their_own_generator_and_latents_ignore_their_batch_mates(riffusion: Any) -> None:
    prompts = ["solo drums", "a long prompt: funky slap bass line, E minor, 120 BPM", "piano"]
    negatives = ["low quality", "noise", "drums"]
    width = 256

    def call(rows: list[int], seeds: list[int]) -> Any:
        shape = tiny_riffusion.latent_shape(width)
        latents = torch.cat([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])
        return riffusion(
            [prompts[i] for i in rows],
            negative_prompt=[negatives[i] for i in rows],
            height=512,
            width=width,
            num_inference_steps=2,
            latents=latents,
            generator=_generators(seeds),
            output_type="np",
        ).images

    batch, alone = call([0, 1, 2], [1, 2, 3]), call([1], [2])
    assert tiny_riffusion.latent_shape(width) == (1, 4, 64, 32)
    assert batch.shape == (3, 512, width, 3)
    np.testing.assert_allclose(batch[1], alone[0], atol=1e-4)
    assert np.abs(batch[0] - batch[1]).max() > 0.1
