"""The AudioLDM 2 engine's ``user_config``."""

from dataclasses import dataclass
from typing import Annotated

from stemforge.engines.config import Range
from stemforge.engines.diffusion.config import DiffusionConfig


@dataclass(frozen=True)
class AudioLDM2Config(DiffusionConfig):
    # The pipeline's defaults: 200 DDIM steps and guidance 3.5 on a GPU; a CPU replica previews.
    num_inference_steps: Annotated[int, Range(1, 1000)] = 200
    cpu_num_inference_steps: Annotated[int, Range(1, 1000)] = 10
    guidance_scale: Annotated[float, Range(1.0, 20.0)] = 3.5
