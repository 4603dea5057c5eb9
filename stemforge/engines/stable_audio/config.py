"""The Stable Audio engine's ``user_config``: what a deployment can change without a restart."""

from dataclasses import dataclass
from typing import Annotated

from stemforge.engines.config import Range
from stemforge.engines.diffusion.config import DiffusionConfig, guidance_for

__all__ = ["StableAudioConfig", "guidance_for"]


@dataclass(frozen=True)
class StableAudioConfig(DiffusionConfig):
    # The model card's 100 steps on a GPU; one step of the full model over a 47 s latent takes
    # about 40 s on a 2-core CPU, so a CPU replica runs 8 (a preview).
    num_inference_steps: Annotated[int, Range(1, 1000)] = 100
    cpu_num_inference_steps: Annotated[int, Range(1, 1000)] = 8
    guidance_scale: Annotated[float, Range(1.0, 20.0)] = 7.0
