"""Tiny random Stable Audio Open pipelines, saved like the real checkpoint.

``build_tiny_stable_audio`` saves a ``diffusers.StableAudioPipeline`` with the real architecture
(Oobleck VAE, DiT, T5 encoder, projection model, cosine DPM-Solver scheduler) at toy width, in about
a second and a few megabytes. The VAE keeps the production timing layout: 44.1 kHz stereo and
downsampling ratios [2, 4, 4, 8, 8], a hop of 2048 samples per latent frame, so duration maths are
exactly those of stabilityai/stable-audio-open-1.0. The window is ``sample_size`` latent frames:
``sample_size * 2048 / 44100`` seconds (128 frames = 5.94 s; the real model has 1024 = 47.55 s).
Weights are random: the audio is noise.

The tokenizer is a T5 (Unigram) tokenizer built without sentencepiece or any download: every
character is a piece, plus a few whole words, which is enough to tokenize any English prompt.

``stable_audio_open_configs`` gives the full-size stable-audio-open-1.0 configs (for the benchmark);
``build_pipeline`` makes an in-memory pipeline from either size.
"""

import string
from pathlib import Path
from typing import Any

SAMPLE_RATE = 44_100
AUDIO_CHANNELS = 2
DOWNSAMPLING_RATIOS = (2, 4, 4, 8, 8)
HOP_LENGTH = 2048  # product of DOWNSAMPLING_RATIOS: audio samples per latent frame
MAX_TOKENS = 128  # the real tokenizer's model_max_length (stable-audio-tools: t5-base, max_length 128)
_WORDS = (
    "solo",
    "piano",
    "drums",
    "drum",
    "bass",
    "guitar",
    "synth",
    "vocals",
    "strings",
    "pad",
    "lead",
    "bpm",
    "major",
    "minor",
    "chords",
    "groove",
    "only",
    "the",
    "and",
    "with",
)

# stabilityai/stable-audio-open-1.0 scheduler/scheduler_config.json.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_data": 1.0,
    "sigma_max": 500.0,
    "sigma_min": 0.3,
    "sigma_schedule": "exponential",
    "solver_order": 2,
    "solver_type": "midpoint",
    "final_sigmas_type": "zero",
    "euler_at_final": False,
    "lower_order_final": True,
    "rho": 7.0,
}

# Widths: the real model's (t5-base text encoder, 24-layer 1536-wide DiT, 64 latent channels,
# Oobleck VAE of width 128) and the tiny one's.
_FULL = {
    "text_width": 768,
    "text_head_dim": 64,
    "text_ff": 3072,
    "text_layers": 12,
    "text_heads": 12,
    "head_dim": 64,
    "heads": 24,
    "layers": 24,
    "time_dim": 256,
    "latent_channels": 64,
    "vae_width": 128,
}
_TINY = {
    "text_width": 16,
    "text_head_dim": 4,
    "text_ff": 32,
    "text_layers": 1,
    "text_heads": 4,
    "head_dim": 8,
    "heads": 4,
    "layers": 2,
    "time_dim": 16,
    "latent_channels": 8,
    "vae_width": 8,
}


def build_tokenizer() -> Any:
    from transformers import T5Tokenizer

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    # Whole words score higher than their spelling so the Unigram model prefers them.
    words = [(f"\u2581{word}", -2.0) for word in _WORDS]
    chars = [(char, -5.0) for char in string.ascii_letters + string.digits + string.punctuation]
    chars += [("\u2581", -2.0), *[(f"\u2581{char}", -4.0) for char in string.ascii_letters + string.digits]]
    return T5Tokenizer(vocab=specials + words + chars, extra_ids=0, model_max_length=MAX_TOKENS)


def stable_audio_open_configs(
    *, tiny: bool, sample_size: int = 1024, vocab_size: int = 32128
) -> dict[str, Any]:
    """Constructor keyword arguments of each component, by pipeline component name.

    ``tiny=False`` is stabilityai/stable-audio-open-1.0 field by field (``sample_size`` 1024 there);
    ``tiny=True`` keeps its layout (44.1 kHz stereo, hop 2048, grouped-query cross-attention with
    kv heads = cross_attention_dim / head dim, global states = 2 x conditioning dim, projection
    range 0-512 s, Identity text projection since conditioning dim = text width) at toy width.
    """
    size = _TINY if tiny else _FULL
    text_width, head_dim, latent_channels, vae_width = (
        size["text_width"],
        size["head_dim"],
        size["latent_channels"],
        size["vae_width"],
    )
    text = {
        "d_model": text_width,
        "d_kv": size["text_head_dim"],
        "d_ff": size["text_ff"],
        "num_layers": size["text_layers"],
        "num_heads": size["text_heads"],
    }
    conditioning_dim = text_width  # cond_dim 768 = t5-base d_model in the real model
    return {
        "text_encoder": {
            **text,
            "vocab_size": vocab_size,
            "feed_forward_proj": "relu",
            "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128,
            "dropout_rate": 0.1,
            "layer_norm_epsilon": 1e-6,
            "is_encoder_decoder": True,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "decoder_start_token_id": 0,
        },
        "projection_model": {
            "text_encoder_dim": text_width,
            "conditioning_dim": conditioning_dim,
            "min_value": 0,
            "max_value": 512,
        },
        "transformer": {
            "sample_size": sample_size,
            "in_channels": latent_channels,
            "num_layers": size["layers"],
            "attention_head_dim": head_dim,
            "num_attention_heads": size["heads"],
            "num_key_value_attention_heads": conditioning_dim // head_dim,
            "out_channels": latent_channels,
            "cross_attention_dim": conditioning_dim,
            "time_proj_dim": size["time_dim"],
            "global_states_input_dim": 2 * conditioning_dim,
            "cross_attention_input_dim": conditioning_dim,
        },
        "vae": {
            "encoder_hidden_size": vae_width,
            "downsampling_ratios": list(DOWNSAMPLING_RATIOS),
            "channel_multiples": [1, 2, 4, 8, 16],
            "decoder_channels": vae_width,
            "decoder_input_channels": latent_channels,
            "audio_channels": AUDIO_CHANNELS,
            "sampling_rate": SAMPLE_RATE,
        },
        "scheduler": dict(SCHEDULER_CONFIG),
    }


def build_pipeline(configs: dict[str, Any], tokenizer: Any, seed: int = 0) -> Any:
    """An in-memory ``StableAudioPipeline`` (fp32, eval) with random weights from ``configs``."""
    import torch
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(**configs["text_encoder"])).eval()
    projection_model = StableAudioProjectionModel(**configs["projection_model"])
    transformer = StableAudioDiTModel(**configs["transformer"])
    vae = AutoencoderOobleck(**configs["vae"])
    scheduler = CosineDPMSolverMultistepScheduler(**configs["scheduler"])
    pipeline = StableAudioPipeline(
        vae=vae,
        text_encoder=text_encoder,
        projection_model=projection_model,
        tokenizer=tokenizer,
        transformer=transformer,
        scheduler=scheduler,
    )
    for part in ("projection_model", "transformer", "vae"):
        getattr(pipeline, part).eval()  # diffusers' config decorator hides ``eval`` from mypy
    return pipeline


def build_tiny_stable_audio(folder: Path, *, sample_size: int = 128, seed: int = 0) -> Path:
    """Save a tiny random Stable Audio Open pipeline to ``folder`` and return ``folder``.

    ``sample_size`` latent frames is the longest clip: ``sample_size * 2048 / 44100`` seconds
    (128 gives 5.94 s). Reload with ``StableAudioPipeline.from_pretrained(folder)``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    configs = stable_audio_open_configs(tiny=True, sample_size=sample_size, vocab_size=len(tokenizer))
    build_pipeline(configs, tokenizer, seed=seed).save_pretrained(folder)
    return folder


def max_seconds(sample_size: int) -> float:
    """The longest clip a DiT of ``sample_size`` latent frames makes."""
    return sample_size * HOP_LENGTH / SAMPLE_RATE
