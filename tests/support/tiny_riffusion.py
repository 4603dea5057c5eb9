"""Tiny random Riffusion pipelines, saved like the real checkpoint.

Riffusion (riffusion/riffusion-model-v1) is Stable Diffusion v1.5 fine-tuned on mel spectrogram
images and loads in a plain ``diffusers.StableDiffusionPipeline``. ``build_tiny_riffusion`` saves one
with the same components (``UNet2DConditionModel``, ``AutoencoderKL``, ``CLIPTextModel`` and
``CLIPTokenizer``, the SD v1.5 PNDM scheduler, no safety checker) at toy width, in about a second.

What the engine depends on is kept: the VAE has 4 blocks, so a scale factor of 8 and 4 latent
channels; the UNet's ``sample_size`` is 64, so the default image is 512 x 512, and an image of
height 512 (Riffusion's 512 mel bins) and any width ``W`` divisible by 8 comes from latents of shape
``(batch, 4, 64, W // 8)`` (``latent_shape``). A 512-pixel-wide image is 5.12 s of audio (10 ms per
column). The text encoder takes 77 tokens, as CLIP ViT-L/14's. Weights are random: the image is noise.

The tokenizer is a CLIP byte-level BPE tokenizer with no merges, written to a small ``vocab.json``
and a ``merges.txt`` holding only ``#version: 0.2``: every byte is a token, so any prompt tokenizes.

``riffusion_configs(tiny=False)`` is the full size (SD v1.5: 860M-parameter UNet, 84M VAE, 123M
CLIP ViT-L/14 text encoder) for the benchmark; ``build_pipeline`` makes either in memory.
"""

import json
from pathlib import Path
from typing import Any

HEIGHT = 512  # Riffusion's mel bins: the image height is fixed
VAE_SCALE_FACTOR = 8  # 2 ** (len(vae block_out_channels) - 1)
LATENT_CHANNELS = 4
PIXELS_PER_SECOND = 100  # 10 ms hop: 512 px = 5.12 s
CLIP_MAX_TOKENS = 77

# Stable Diffusion v1.5's scheduler (runwayml/stable-diffusion-v1-5 scheduler_config.json), which
# Riffusion v1 ships unchanged as far as this project knows (its own pipeline accepts DDIM, PNDM or
# LMS and loads whatever the checkpoint holds); eps prediction.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

_FULL: dict[str, Any] = {
    "unet_channels": (320, 640, 1280, 1280),
    "unet_heads": 8,
    "unet_groups": 32,
    "vae_channels": (128, 256, 512, 512),
    "vae_groups": 32,
    "vae_layers": 2,
    "text_width": 768,
    "text_ff": 3072,
    "text_layers": 12,
    "text_heads": 12,
}
_TINY: dict[str, Any] = {
    "unet_channels": (8, 16, 16, 16),
    "unet_heads": 2,
    "unet_groups": 8,
    "vae_channels": (8, 8, 8, 8),
    "vae_groups": 4,
    "vae_layers": 1,
    "text_width": 16,
    "text_ff": 37,
    "text_layers": 2,
    "text_heads": 2,
}


def latent_shape(width: int, batch: int = 1, height: int = HEIGHT) -> tuple[int, int, int, int]:
    """The latents ``StableDiffusionPipeline`` denoises for a ``height`` x ``width`` image."""
    if width % VAE_SCALE_FACTOR or height % VAE_SCALE_FACTOR:
        raise ValueError(f"height and width must be divisible by {VAE_SCALE_FACTOR}, got {height} x {width}")
    return (batch, LATENT_CHANNELS, height // VAE_SCALE_FACTOR, width // VAE_SCALE_FACTOR)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet (Roberta and CLIP use it): one printable character per byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet: dict[int, str] = bytes_to_unicode()
    return alphabet


def build_clip_tokenizer(folder: Path) -> Any:
    """A CLIP tokenizer with no merges: each byte, and each byte ending a word (``</w>``), is a token
    (512 + the 2 specials); 77 tokens padded with ``<|endoftext|>`` as SD's."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = [*chars, *[f"{char}</w>" for char in chars], "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        model_max_length=CLIP_MAX_TOKENS,
        pad_token="<|endoftext|>",
    )


def riffusion_configs(*, tiny: bool, vocab_size: int = 49408) -> dict[str, Any]:
    """Constructor keyword arguments of each component, by pipeline component name.

    ``tiny=False`` is Stable Diffusion v1.5 (Riffusion v1's architecture) field by field; ``tiny=True``
    keeps its layout (VAE factor 8, 4 latent channels, UNet sample size 64 with 3 downsamplings and
    cross-attention on the first 3 levels, 77-token CLIP text encoder) at toy width.
    """
    size = _TINY if tiny else _FULL
    text_width = size["text_width"]
    vae_blocks = len(size["vae_channels"])
    return {
        "text_encoder": {
            "vocab_size": vocab_size,
            "hidden_size": text_width,
            "intermediate_size": size["text_ff"],
            "num_hidden_layers": size["text_layers"],
            "num_attention_heads": size["text_heads"],
            "max_position_embeddings": CLIP_MAX_TOKENS,
            "hidden_act": "quick_gelu",
            "projection_dim": text_width,
            # SD v1.5's (legacy) ids: eos 2 makes CLIP pool at the highest token id, <|endoftext|>,
            # which is the last id in both the real and the tiny vocabulary.
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        "unet": {
            "sample_size": HEIGHT // VAE_SCALE_FACTOR,
            "in_channels": LATENT_CHANNELS,
            "out_channels": LATENT_CHANNELS,
            "down_block_types": (
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            "block_out_channels": size["unet_channels"],
            "layers_per_block": 2,
            "attention_head_dim": size["unet_heads"],  # diffusers' name for the number of heads
            "cross_attention_dim": text_width,
            "norm_num_groups": size["unet_groups"],
        },
        "vae": {
            "in_channels": 3,
            "out_channels": 3,
            "latent_channels": LATENT_CHANNELS,
            "block_out_channels": size["vae_channels"],
            "down_block_types": ["DownEncoderBlock2D"] * vae_blocks,
            "up_block_types": ["UpDecoderBlock2D"] * vae_blocks,
            "layers_per_block": size["vae_layers"],
            "norm_num_groups": size["vae_groups"],
            "sample_size": HEIGHT,
            "scaling_factor": 0.18215,
        },
        "scheduler": dict(SCHEDULER_CONFIG),
    }


def build_pipeline(configs: dict[str, Any], tokenizer: Any, seed: int = 0) -> Any:
    """An in-memory ``StableDiffusionPipeline`` (fp32, eval, no safety checker) from ``configs``."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    pipeline = StableDiffusionPipeline(
        vae=AutoencoderKL(**configs["vae"]),
        text_encoder=CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])).eval(),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**configs["unet"]),
        scheduler=PNDMScheduler(**configs["scheduler"]),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    for part in ("vae", "unet"):
        getattr(pipeline, part).eval()  # diffusers' config decorator hides ``eval`` from mypy
    return pipeline


def build_tiny_riffusion(folder: Path, *, seed: int = 0) -> Path:
    """Save a tiny random Riffusion (Stable Diffusion v1.5 layout) pipeline to ``folder`` and return it.

    Reload with ``StableDiffusionPipeline.from_pretrained(folder)``.
    """
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = build_clip_tokenizer(Path(scratch))
        configs = riffusion_configs(tiny=True, vocab_size=len(tokenizer))
        build_pipeline(configs, tokenizer, seed=seed).save_pretrained(folder)
    return folder
