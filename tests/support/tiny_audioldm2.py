"""Tiny random AudioLDM 2 (music) pipelines, saved like the real checkpoint.

``build_tiny_audioldm2`` saves a ``diffusers.AudioLDM2Pipeline`` with the architecture of
cvssp/audioldm2-music at toy width, in under a second and about 7 MB: CLAP (``ClapModel``, text and
audio branches, with its ``ClapFeatureExtractor``) and a Roberta tokenizer, a T5 encoder and
tokenizer, the projection model, a ``GPT2Model`` language model generating 8 hidden states, the
AudioLDM 2 UNet (a self-attention and two cross-attention transformers per layer: GPT-2 states, then
T5 states), the mel VAE and a HiFi-GAN vocoder, with the real DDIM scheduler.

The timing layout is production's, so duration maths are exactly those of the real model:

* vocoder: 16 kHz, 64 mel bins, upsample rates [5, 4, 2, 2, 2] = 160 samples (10 ms) per mel frame;
* VAE: 3 blocks, so a scale factor of 4 on both axes; 8 latent channels;
* a request of ``s`` seconds denoises latents of shape ``(batch, 8, frames // 4, 16)`` where
  ``frames = int(s / 0.01)`` mel frames rounded up to a multiple of 4 (see ``latent_shape``) and the
  audio is cut to ``int(s * 16000)`` samples;
* the UNet's ``sample_size`` is 256 latent rows: the pipeline's default length is 256 x 4 x 10 ms =
  10.24 s, as for the real model (its training clips are 10.24 s).

Weights are random: the audio is noise. Numbers come from AudioLDM 2's own default configuration
(haoheliu/AudioLDM2 ``audioldm2/utils.py``: UNet model_channels 128, channel_mult [1, 2, 3, 5],
attention at 2x/4x/8x, context dims [768, 1024], 32 channels per head; VAE ch 128, ch_mult [1, 2, 4],
z 8; DDIM betas 0.0015-0.0195 over 1000 steps, eps prediction, 200 steps, guidance 3.5; 8 generated
GPT-2 states from CLAP (512) and Flan-T5 (1024) inputs) and diffusers' conversion script (CLAP =
laion/clap-htsat-unfused, T5 = google/flan-t5-large with 128 tokens, GPT-2 = gpt2).

transformers 5 no longer gives ``GPT2Model`` the private generation helper the pipeline calls
(diffusers #12630): the engine's ``audioldm2.compat.enable_language_model_generation`` restores it;
``generate_states`` is the same loop written out. ``per_row_embeddings`` encodes each row alone: a
batch encoded in one call pads T5 tokens to its longest prompt and GPT-2 sees the padding, so rows
would depend on their batch mates even with their own generators and latents.
"""

import json
import string
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16_000
MEL_BINS = 64
UPSAMPLE_RATES = (5, 4, 2, 2, 2)
HOP_LENGTH = 160  # product of UPSAMPLE_RATES: audio samples per mel frame (10 ms)
VAE_SCALE_FACTOR = 4  # 2 ** (len(vae block_out_channels) - 1)
LATENT_CHANNELS = 8
SAMPLE_SIZE = 256  # UNet latent rows: the default length, 256 * 4 * 160 / 16000 = 10.24 s
GENERATED_STATES = 8  # GPT-2 states generated per prompt (max_new_tokens)
CLAP_MAX_TOKENS = 512  # laion/clap-htsat-unfused's Roberta tokenizer (roberta-base)
T5_MAX_TOKENS = 128  # hard-coded in AudioLDM 2 (diffusers' conversion script)

# cvssp/audioldm2-music scheduler: DDIM on AudioLDM 2's linear_start/linear_end, eps prediction.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0015,
    "beta_end": 0.0195,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

_FULL: dict[str, Any] = {
    "unet_channels": (128, 256, 384, 640),
    "unet_heads": (4, 8, 12, 20),  # 32 channels per head
    "unet_groups": 32,
    "vae_channels": (128, 256, 512),
    "vae_groups": 32,
    "clap_width": 768,
    "clap_layers": 12,
    "clap_heads": 12,
    "clap_ff": 3072,
    "clap_projection": 512,
    "t5_width": 1024,
    "t5_kv": 64,
    "t5_ff": 2816,
    "t5_layers": 24,
    "t5_heads": 16,
    "gpt2_width": 768,
    "gpt2_layers": 12,
    "gpt2_heads": 12,
    "vocoder_channels": 1024,
}
_TINY: dict[str, Any] = {
    "unet_channels": (8, 16, 24, 40),  # the real 1:2:3:5 ratios
    "unet_heads": (2, 2, 2, 2),
    "unet_groups": 8,
    "vae_channels": (8, 16, 32),
    "vae_groups": 8,
    "clap_width": 16,
    "clap_layers": 2,
    "clap_heads": 2,
    "clap_ff": 37,
    "clap_projection": 16,
    "t5_width": 32,
    "t5_kv": 8,
    "t5_ff": 37,
    "t5_layers": 2,
    "t5_heads": 2,
    "gpt2_width": 16,
    "gpt2_layers": 2,
    "gpt2_heads": 2,
    "vocoder_channels": 32,  # halved by each of the 5 upsamplers: 1 channel at 16 kHz
}


def latent_shape(seconds: float, batch: int = 1) -> tuple[int, int, int, int]:
    """The latents ``AudioLDM2Pipeline`` denoises for ``audio_length_in_s=seconds`` (as it computes
    them: ``int(seconds / 0.01)`` mel frames, rounded up to a multiple of the VAE scale factor)."""
    frames = int(seconds / (HOP_LENGTH / SAMPLE_RATE))
    frames = -(-frames // VAE_SCALE_FACTOR) * VAE_SCALE_FACTOR
    return (batch, LATENT_CHANNELS, frames // VAE_SCALE_FACTOR, MEL_BINS // VAE_SCALE_FACTOR)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet (Roberta and CLIP use it): one printable character per byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet: dict[int, str] = bytes_to_unicode()
    return alphabet


def build_roberta_tokenizer(folder: Path, model_max_length: int = CLAP_MAX_TOKENS) -> Any:
    """A byte-level BPE Roberta tokenizer with no merges: every byte is a token (261 in all), so any
    text tokenizes; specials at Roberta's ids (<s> 0, <pad> 1, </s> 2, <unk> 3)."""
    from transformers import RobertaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *_bytes_to_unicode().values(), "<mask>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return RobertaTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=model_max_length
    )


def build_t5_tokenizer(model_max_length: int = T5_MAX_TOKENS) -> Any:
    """A T5 (Unigram) tokenizer without sentencepiece or a download: characters plus word starts."""
    from transformers import T5Tokenizer

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    chars = [(char, -5.0) for char in string.ascii_letters + string.digits + string.punctuation]
    chars += [("\u2581", -2.0), *[(f"\u2581{char}", -4.0) for char in string.ascii_letters + string.digits]]
    return T5Tokenizer(vocab=specials + chars, extra_ids=0, model_max_length=model_max_length)


def audioldm2_music_configs(
    *, tiny: bool, clap_vocab_size: int = 50265, t5_vocab_size: int = 32128
) -> dict[str, Any]:
    """Constructor keyword arguments of each component, by pipeline component name.

    ``tiny=False`` is cvssp/audioldm2-music as far as its published configuration goes;
    ``tiny=True`` keeps its layout (16 kHz, 64 mel bins, hop 160, VAE factor 4, 8 latent channels,
    4 UNet levels with attention on the lower 3, [self, GPT-2, T5] attention per layer, 8 generated
    states) at toy width.
    """
    size = _TINY if tiny else _FULL
    clap, t5, gpt2 = size["clap_width"], size["t5_width"], size["gpt2_width"]
    levels = len(size["unet_channels"])
    return {
        "clap_text": {
            "vocab_size": clap_vocab_size,
            "hidden_size": clap,
            "num_hidden_layers": size["clap_layers"],
            "num_attention_heads": size["clap_heads"],
            "intermediate_size": size["clap_ff"],
            "max_position_embeddings": CLAP_MAX_TOKENS + 2,  # Roberta positions start after the pad id
            "type_vocab_size": 1,
            "projection_dim": size["clap_projection"],
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        # The audio branch only ranks waveforms when num_waveforms_per_prompt > 1: HTSAT-base in the
        # real model (the transformers defaults); the tiny one keeps its 256 x 256 input (so the real
        # feature extractor's 1001 x 64 features of 10 s fit) with 4 stages of toy width.
        "clap_audio": {}
        if not tiny
        else {
            "spec_size": 256,
            "window_size": 8,
            "num_mel_bins": MEL_BINS,
            "patch_size": 4,
            "patch_stride": [4, 4],
            "patch_embeds_hidden_size": 8,
            "depths": [1, 1, 1, 1],
            "num_attention_heads": [1, 1, 2, 2],
            "hidden_size": 64,  # patch_embeds_hidden_size * 2 ** (stages - 1)
            "mlp_ratio": 2.0,
            "projection_dim": size["clap_projection"],
        },
        "text_encoder_2": {
            "vocab_size": t5_vocab_size,
            "d_model": t5,
            "d_kv": size["t5_kv"],
            "d_ff": size["t5_ff"],
            "num_layers": size["t5_layers"],
            "num_heads": size["t5_heads"],
            "feed_forward_proj": "gated-gelu",  # Flan-T5
            "tie_word_embeddings": False,
            "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "decoder_start_token_id": 0,
        },
        "language_model": {
            "n_embd": gpt2,
            "n_layer": size["gpt2_layers"],
            "n_head": size["gpt2_heads"],
            "n_positions": 1024,
            "vocab_size": 50257 if not tiny else 1000,  # unused: the model only sees embeddings
            "bos_token_id": 50256 if not tiny else 999,
            "eos_token_id": 50256 if not tiny else 999,
        },
        "projection_model": {
            "text_encoder_dim": size["clap_projection"],
            "text_encoder_1_dim": t5,
            "langauge_model_dim": gpt2,  # sic: diffusers' spelling
        },
        "unet": {
            "sample_size": SAMPLE_SIZE,
            "in_channels": LATENT_CHANNELS,
            "out_channels": LATENT_CHANNELS,
            "down_block_types": ("DownBlock2D", *["CrossAttnDownBlock2D"] * (levels - 1)),
            "up_block_types": (*["CrossAttnUpBlock2D"] * (levels - 1), "UpBlock2D"),
            "block_out_channels": size["unet_channels"],
            "layers_per_block": 2,
            "attention_head_dim": size["unet_heads"],  # diffusers' name for the number of heads
            "norm_num_groups": size["unet_groups"],
            # Per level: a self-attention transformer, cross-attention on the GPT-2 states, then on T5.
            "cross_attention_dim": tuple([None, gpt2, t5] for _ in range(levels)),
        },
        "vae": {
            "in_channels": 1,
            "out_channels": 1,
            "latent_channels": LATENT_CHANNELS,
            "block_out_channels": size["vae_channels"],
            "down_block_types": ["DownEncoderBlock2D"] * len(size["vae_channels"]),
            "up_block_types": ["UpDecoderBlock2D"] * len(size["vae_channels"]),
            "layers_per_block": 2,
            "norm_num_groups": size["vae_groups"],
            "sample_size": SAMPLE_SIZE * VAE_SCALE_FACTOR,
            # The real VAE's scaling factor is learnt (scale_by_std); its value is not known here.
        },
        "vocoder": {
            "model_in_dim": MEL_BINS,
            "sampling_rate": SAMPLE_RATE,
            "upsample_initial_channel": size["vocoder_channels"],
            "upsample_rates": list(UPSAMPLE_RATES),
            "upsample_kernel_sizes": [16, 16, 8, 4, 4],
            "resblock_kernel_sizes": [3, 7, 11],
            "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            "normalize_before": False,
            # Random weights at the default std (0.01) make ~1e-9 audio through 5 stages this narrow;
            # 0.15 gives noise peaking near 0.1-1 so loudness and resampling code sees real signal.
            **({"initializer_range": 0.15} if tiny else {}),
        },
        "scheduler": dict(SCHEDULER_CONFIG),
    }


def build_pipeline(configs: dict[str, Any], tokenizer: Any, tokenizer_2: Any, seed: int = 0) -> Any:
    """An in-memory ``AudioLDM2Pipeline`` (fp32, eval) with random weights from ``configs``."""
    import torch
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        AutoencoderKL,
        DDIMScheduler,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2Model,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        T5Config,
        T5EncoderModel,
    )

    torch.manual_seed(seed)
    text_config = ClapTextConfig(**configs["clap_text"])
    audio_config = ClapAudioConfig(**configs["clap_audio"])
    clap = ClapModel(
        ClapConfig(
            text_config=text_config.to_dict(),
            audio_config=audio_config.to_dict(),
            projection_dim=text_config.projection_dim,
        )
    ).eval()
    language_model = GPT2Model(GPT2Config(**configs["language_model"])).eval()
    language_model.config.max_new_tokens = GENERATED_STATES  # read by the pipeline, saved in config.json
    pipeline = AudioLDM2Pipeline(
        vae=AutoencoderKL(**configs["vae"]),
        text_encoder=clap,
        text_encoder_2=T5EncoderModel(T5Config(**configs["text_encoder_2"])).eval(),
        projection_model=AudioLDM2ProjectionModel(**configs["projection_model"]),
        language_model=language_model,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        # laion/clap-htsat-unfused: 48 kHz, 64 mel bins, hop 480, 10 s; one channel (the unfused model).
        feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"),
        unet=AudioLDM2UNet2DConditionModel(**configs["unet"]),
        scheduler=DDIMScheduler(**configs["scheduler"]),
        vocoder=SpeechT5HifiGan(SpeechT5HifiGanConfig(**configs["vocoder"])).eval(),
    )
    for part in ("vae", "projection_model", "unet"):
        getattr(pipeline, part).eval()  # diffusers' config decorator hides ``eval`` from mypy
    return pipeline


def build_tiny_audioldm2(folder: Path, *, seed: int = 0) -> Path:
    """Save a tiny random AudioLDM 2 (music) pipeline to ``folder`` and return ``folder``.

    Reload with ``AudioLDM2Pipeline.from_pretrained(folder)``; under transformers 5 call
    ``stemforge.engines.audioldm2.compat.enable_language_model_generation(pipe)`` before generating.
    """
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = build_roberta_tokenizer(Path(scratch))
        tokenizer_2 = build_t5_tokenizer()
        configs = audioldm2_music_configs(
            tiny=True, clap_vocab_size=len(tokenizer), t5_vocab_size=len(tokenizer_2)
        )
        build_pipeline(configs, tokenizer, tokenizer_2, seed=seed).save_pretrained(folder)
    return folder


def generate_states(pipe: Any, embeds: Any, attention_mask: Any, new_states: int = GENERATED_STATES) -> Any:
    """What the pipeline's language-model loop computes, written out: ``new_states`` greedy steps of
    GPT-2 on ``inputs_embeds``, each appending the last position's final hidden state (no cache)."""
    import torch

    for _ in range(new_states):
        hidden = pipe.language_model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        embeds = torch.cat([embeds, hidden[:, -1:]], dim=1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], 1)
    return embeds[:, -new_states:]


def per_row_embeddings(pipe: Any, prompts: list[str], negatives: list[str]) -> dict[str, Any]:
    """Keyword arguments for ``AudioLDM2Pipeline.__call__`` that keep each row independent of its
    batch mates: each (prompt, negative) pair encoded alone by the pipeline's own ``encode_prompt``,
    then the T5 states zero-padded (mask 0, which the UNet's cross-attention honours) to one length.

    Encoding the batch in one call pads every prompt's T5 tokens to the longest, and GPT-2, which
    generates the 8 states the UNet attends to, sees that padding: rows then change with their batch
    mates. As in the pipeline, a negative prompt's T5 tokens are cut to its own prompt's token
    length. Needs ``enable_language_model_generation`` under transformers 5.
    """
    import torch

    rows = []
    with torch.no_grad():
        for prompt, negative in zip(prompts, negatives, strict=True):
            embeds, mask, generated = pipe.encode_prompt(
                [prompt], pipe._execution_device, 1, True, negative_prompt=[negative]
            )
            rows.append((embeds, mask, generated))  # each (negative, positive)
    length = max(embeds.shape[1] for embeds, _, _ in rows)

    def padded(tensor: Any) -> Any:
        missing = length - tensor.shape[1]
        return torch.nn.functional.pad(tensor, (0, 0, 0, missing) if tensor.dim() == 3 else (0, missing))

    def stack(part: int, index: int) -> Any:  # part 0: negative, 1: positive
        return torch.cat([padded(row[index][part : part + 1]) for row in rows])

    return {
        "negative_prompt_embeds": stack(0, 0),
        "prompt_embeds": stack(1, 0),
        "negative_attention_mask": stack(0, 1),
        "attention_mask": stack(1, 1),
        "negative_generated_prompt_embeds": torch.cat([row[2][0:1] for row in rows]),
        "generated_prompt_embeds": torch.cat([row[2][1:2] for row in rows]),
    }
