"""The Riffusion engine's ``user_config``."""

from dataclasses import dataclass
from typing import Annotated

from stemforge.engines.config import Range
from stemforge.engines.diffusion.config import DiffusionConfig


@dataclass(frozen=True)
class RiffusionConfig(DiffusionConfig):
    # Stable Diffusion's usual 50 steps and guidance 7 on a GPU; a CPU replica previews.
    num_inference_steps: Annotated[int, Range(1, 1000)] = 50
    cpu_num_inference_steps: Annotated[int, Range(1, 1000)] = 10
    guidance_scale: Annotated[float, Range(1.0, 20.0)] = 7.0
    # The widest image per call, in pixel columns of 10 ms: the model was trained on 512 x 512
    # (5.12 s); wider images drift from what it learnt.
    tile_columns: Annotated[int, Range(64, 2048)] = 512
    # Phase reconstruction (librosa's Griffin-Lim): riffusion's 32 iterations; more is cleaner
    # and slower (about 10 s per tile here at 32).
    griffin_lim_iterations: Annotated[int, Range(1, 500)] = 32
