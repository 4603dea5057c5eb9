"""Loading a Stable Audio Open pipeline (diffusers), once per replica.

``STABLE_AUDIO_MODEL`` is a folder holding a diffusers pipeline, or a Hugging Face model id
looked up in the local cache only (never downloaded at start-up).
"""

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stemforge.engines.checkpoints import STABLE_AUDIO, how_to_provide, resolve_checkpoint
from stemforge.errors import ConfigurationError

logger = logging.getLogger(__name__)

PIPELINE_CLASS = "StableAudioPipeline"
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class LoadedPipeline:
    pipeline: Any  # diffusers.StableAudioPipeline
    name: str  # STABLE_AUDIO_MODEL as given
    path: Path | None  # the folder it was loaded from (None: built in memory)
    device: torch.device
    dtype: torch.dtype  # the DiT's and text encoder's; the VAE decodes in float32

    @property
    def sample_rate(self) -> int:
        return int(self.pipeline.vae.config.sampling_rate)

    @property
    def hop(self) -> int:
        """Audio samples per latent frame."""
        return int(math.prod(self.pipeline.vae.config.downsampling_ratios))

    @property
    def latent_channels(self) -> int:
        return int(self.pipeline.transformer.config.in_channels)

    @property
    def max_seconds(self) -> float:
        """The longest audio one call makes: the DiT's training length."""
        return int(self.pipeline.transformer.config.sample_size) * self.hop / self.sample_rate

    def latent_frames(self, seconds: float) -> int:
        return max(1, math.ceil(seconds * self.sample_rate / self.hop - 1e-6))


def load_pipeline(name: str, device: torch.device, dtype: torch.dtype) -> LoadedPipeline:
    from diffusers import StableAudioPipeline

    path = resolve_checkpoint(name, STABLE_AUDIO)
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"STABLE_AUDIO_MODEL={name!r}: unreadable model_index.json in {path}: {exc}"
        ) from exc
    if index.get("_class_name") != PIPELINE_CLASS:
        raise ConfigurationError(
            f"STABLE_AUDIO_MODEL={name!r} ({path}) is a {index.get('_class_name')!r} pipeline; the "
            f"stable_audio engine loads {PIPELINE_CLASS} checkpoints"
        )
    try:
        pipeline = StableAudioPipeline.from_pretrained(path, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigurationError(
            f"STABLE_AUDIO_MODEL={name!r}: could not load the pipeline in {path}: {exc}. "
            + how_to_provide(name, STABLE_AUDIO)
        ) from exc
    return prepare(pipeline, name, path, device, dtype)


def prepare(
    pipeline: Any, name: str, path: Path | None, device: torch.device, dtype: torch.dtype
) -> LoadedPipeline:
    """Place a pipeline for inference: weights in ``dtype`` on ``device``, except the VAE, which
    stays float32 (its decode is where fp16 overflows to NaN or noise)."""
    pipeline.to(device=device, dtype=dtype)
    pipeline.vae.to(dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    for part in ("transformer", "text_encoder", "projection_model", "vae"):
        getattr(pipeline, part).eval()
    return LoadedPipeline(pipeline=pipeline, name=name, path=path, device=device, dtype=dtype)
