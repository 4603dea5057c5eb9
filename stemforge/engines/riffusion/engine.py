"""The Riffusion engine: a Stable Diffusion fine-tune that paints mel spectrograms (a 512 x 512
image is 5.12 s), loaded in a plain ``diffusers.StableDiffusionPipeline``, turned back into audio
by our own codec (``spectrogram``: the model's exact mel parameters, then Griffin-Lim).

Its audio is mono at 44.1 kHz with nothing above 10 kHz (the mel range); duplicated to stereo.
Longer stems are tiles on the bar grid (beats at slow tempos), crossfaded like every diffusion
engine's windows.
"""

from typing import Any

import numpy as np

from stemforge.engines.checkpoints import RIFFUSION
from stemforge.engines.diffusion.engine import DiffusionEngine, Row, StepTracker, to_stem_audio
from stemforge.engines.riffusion.config import RiffusionConfig
from stemforge.engines.riffusion.spectrogram import RIFFUSION as CODEC
from stemforge.engines.riffusion.spectrogram import columns_for_seconds, image_to_audio
from stemforge.music.spec import SAMPLE_RATE

ENGINE_NAME = "riffusion"
LATENT_CHANNELS = 4


class RiffusionEngine(DiffusionEngine[RiffusionConfig]):
    name = ENGINE_NAME
    config_type = RiffusionConfig
    label = "Riffusion"
    checkpoint = RIFFUSION
    settings_field = "riffusion_model"
    pipeline_class = "StableDiffusionPipeline"
    extra = "riffusion"

    def _after_load(self) -> None:
        # A spectrogram is no photograph: the safety checker would black out random tiles.
        self._loaded.pipeline.safety_checker = None

    @property
    def max_seconds(self) -> float:
        return self._config.tile_columns * CODEC.seconds_per_column

    def _call_key(self, row: Row) -> Any:
        return columns_for_seconds(row.seconds), row.guidance

    def details(self) -> dict[str, Any]:
        return {
            **super().details(),
            "native_sample_rate": CODEC.sample_rate,
            "bandwidth_hz": int(CODEC.max_frequency),
            "native_channels": 1,
        }

    def _render(self, rows: list[Row], steps: int, tracker: StepTracker) -> list[np.ndarray]:
        import torch

        loaded = self._loaded
        pipeline = loaded.pipeline
        width = columns_for_seconds(max(row.seconds for row in rows))
        height = CODEC.num_frequencies
        factor = int(pipeline.vae_scale_factor)
        generators = [torch.Generator("cpu").manual_seed(row.seed) for row in rows]
        # The initial noise is drawn per row from its own generator, on the CPU: a row's image is
        # the same in any batch.
        latents = torch.stack(
            [
                torch.randn(
                    (LATENT_CHANNELS, height // factor, width // factor), generator=g, dtype=torch.float32
                )
                for g in generators
            ]
        )

        def on_step_end(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            tracker.on_step()
            return kwargs

        with torch.inference_mode():
            output = pipeline(
                prompt=[row.prompt for row in rows],
                negative_prompt=[row.negative for row in rows],
                height=height,
                width=width,
                num_inference_steps=steps,
                guidance_scale=rows[0].guidance,  # one per call (see _call_key)
                generator=generators,
                latents=latents.to(loaded.device, loaded.dtype),
                output_type="np",
                callback_on_step_end=on_step_end,
            )
        images = np.asarray(output.images, dtype=np.float32)
        return [
            to_stem_audio(
                image_to_audio(
                    image, n_iter=self._config.griffin_lim_iterations, random_state=row.seed % 2**32
                ),
                CODEC.sample_rate,
                round(row.seconds * SAMPLE_RATE),
            )
            for row, image in zip(rows, images, strict=True)
        ]
