"""Loading a MusicGen checkpoint, once per replica.

``MUSICGEN_MODEL`` is a folder, or a Hugging Face model id looked up in the local cache only: a
replica never downloads gigabytes at start-up (with ``HF_HUB_OFFLINE=1`` it could not anyway), so
a missing checkpoint fails fast with where it looked and how to put it there.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# resolve_checkpoint lives in the torch-free ``stemforge.engines.checkpoints`` module (the
# launcher checks it before anything starts); imported here too because callers have always
# found it in this module.
from stemforge.engines.checkpoints import how_to_provide, resolve_checkpoint
from stemforge.errors import ConfigurationError

logger = logging.getLogger(__name__)

_ARCHITECTURES = {
    "musicgen": "MusicgenForConditionalGeneration",
    "musicgen_melody": "MusicgenMelodyForConditionalGeneration",
}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    name: str  # MUSICGEN_MODEL as given
    path: Path  # the folder it was loaded from
    device: torch.device
    dtype: torch.dtype  # the decoder's compute dtype
    quantized: bool

    @property
    def is_melody(self) -> bool:
        return bool(self.model.config.model_type == "musicgen_melody")

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def frame_rate(self) -> float:
        codec = self.model.config.audio_encoder
        return float(codec.sampling_rate / codec.hop_length)

    @property
    def num_codebooks(self) -> int:
        return int(self.model.decoder.config.num_codebooks)

    @property
    def audio_channels(self) -> int:
        return int(self.model.decoder.config.audio_channels)

    @property
    def start_token(self) -> int:
        generation = self.model.generation_config
        token = generation.decoder_start_token_id
        if token is None:
            token = self.model.decoder.config.bos_token_id
        return int(token)


def load_model(name: str, device: torch.device, cpu_int8: bool) -> LoadedModel:
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_checkpoint(name)
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"MUSICGEN_MODEL={name!r}: unreadable config in {path}: {exc}") from exc
    architecture = _ARCHITECTURES.get(config.model_type)
    if architecture is None:
        raise ConfigurationError(
            f"MUSICGEN_MODEL={name!r} ({path}) is a {config.model_type!r} checkpoint; the musicgen "
            f"engine loads {sorted(_ARCHITECTURES)} checkpoints"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = getattr(transformers, architecture).from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"MUSICGEN_MODEL={name!r}: could not load the checkpoint in {path}: {exc}. "
            + how_to_provide(name)
        ) from exc
    model.eval()
    dtype = torch.float32
    quantized = False
    if device.type == "cuda":
        # Half precision for the decoder, which does all the per-token work. The T5 encoder (run
        # once, and prone to fp16 overflow) and the codec (run once, quality-critical) stay fp32.
        model.to(device)
        dtype = torch.float16
        for part in ("decoder", "enc_to_dec_proj", "audio_enc_to_dec_proj"):
            module = getattr(model, part, None)
            if module is not None:
                module.to(dtype)
    elif cpu_int8:
        quantize_decoder(model)
        quantized = True
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        path=path,
        device=device,
        dtype=dtype,
        quantized=quantized,
    )


def quantize_decoder(model: Any) -> None:
    """int8 weights for the decoder's Linear layers, in place (see ``quantization``). Only the
    decoder: the text encoder and the codec run once per request."""
    from stemforge.engines.musicgen.quantization import quantize_linears

    quantize_linears(model.decoder)
