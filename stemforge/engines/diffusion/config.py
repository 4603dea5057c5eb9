"""The ``user_config`` keys every diffusion engine has; each engine's config subclasses this with
its own defaults."""

from dataclasses import dataclass
from typing import Annotated, Literal

from stemforge.engines.config import Range


@dataclass(frozen=True)
class DiffusionConfig:
    # Denoising steps on a GPU and on a CPU, where the full models take seconds to tens of
    # seconds per step: a CPU replica renders a preview and /health says so.
    num_inference_steps: Annotated[int, Range(1, 1000)] = 50
    cpu_num_inference_steps: Annotated[int, Range(1, 1000)] = 8
    # Classifier-free guidance at temperature 1. The request's temperature scales how far past 1
    # it goes: guidance = 1 + (guidance_scale - 1) * (1.5 - temperature / 2), so temperature 0
    # follows the prompt 1.5x harder and temperature 2 half as hard (more varied takes).
    guidance_scale: Annotated[float, Range(1.0, 20.0)] = 7.0
    # Longest window per pipeline call, in seconds; None: the checkpoint's own.
    window_seconds: Annotated[float, Range(1.0, 600.0)] | None = None
    # Longer stems: windows overlap by this many bars, crossfaded from downbeat to downbeat.
    overlap_bars: Annotated[int, Range(1, 8)] = 1
    # Rows (stems x windows, across merged requests) per pipeline call: bounds GPU memory.
    max_rows_per_call: Annotated[int, Range(1, 256)] = 16
    # Stretch each stem onto the request's BPM (when close enough) and shift it onto its beats,
    # so it lines up with the other engines' stems of the same request.
    time_stretch_to_bpm: bool = True
    measure_tempo: bool = True
    target_lufs: Annotated[float, Range(-60.0, -5.0)] = -14.0
    peak_ceiling_dbfs: Annotated[float, Range(-20.0, 0.0)] = -1.0
    # Weights on a GPU and on a CPU (bfloat16 halves memory; these CPUs gain little speed).
    gpu_dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    cpu_dtype: Literal["float32", "bfloat16"] = "float32"
    num_threads: Annotated[int, Range(1, 256)] | None = None

    def steps(self, on_gpu: bool) -> int:
        return self.num_inference_steps if on_gpu else self.cpu_num_inference_steps

    def dtype_name(self, on_gpu: bool) -> str:
        return self.gpu_dtype if on_gpu else self.cpu_dtype


def guidance_for(config: DiffusionConfig, temperature: float) -> float:
    """The guidance scale a request's temperature (0..2) gets; see ``guidance_scale``."""
    return 1.0 + (config.guidance_scale - 1.0) * (1.5 - 0.5 * temperature)
