"""The Stable Audio Open engine: stems from a diffusers ``StableAudioPipeline``.

The latent is sized to the window (denoising cost grows with its length), never the model's
full 47 s; the initial noise of each row is drawn from its own generator and the sampler's
Brownian noise is seeded per row. The pipeline stops at the denoised latent: the VAE decodes each
row alone, in float32, where fp16 would overflow.
"""

import warnings
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from stemforge.engines.checkpoints import STABLE_AUDIO
from stemforge.engines.diffusion.engine import DiffusionEngine, Row, StepTracker, to_stem_audio
from stemforge.engines.stable_audio.config import StableAudioConfig
from stemforge.errors import GenerationFailed
from stemforge.music.spec import SAMPLE_RATE, MusicSpec

if TYPE_CHECKING:
    import torch

ENGINE_NAME = "stable_audio"
SAMPLER = "CosineDPMSolverMultistepScheduler"


class StableAudioEngine(DiffusionEngine[StableAudioConfig]):
    name = ENGINE_NAME
    config_type = StableAudioConfig
    label = "Stable Audio"
    checkpoint = STABLE_AUDIO
    settings_field = "stable_audio_model"
    pipeline_class = "StableAudioPipeline"
    extra = "stable-audio"
    required_modules = ("torch", "transformers", "diffusers", "torchsde", "librosa")
    keep_float32 = ("vae",)

    # --- the pipeline's geometry --------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return int(self._loaded.pipeline.vae.config.sampling_rate)

    @property
    def hop(self) -> int:
        """Audio samples per latent frame."""
        return int(np.prod(self._loaded.pipeline.vae.config.downsampling_ratios))

    @property
    def latent_channels(self) -> int:
        return int(self._loaded.pipeline.transformer.config.in_channels)

    @property
    def max_seconds(self) -> float:
        """The DiT's training length: 1024 frames, 47.55 s for Stable Audio Open 1.0."""
        return int(self._loaded.pipeline.transformer.config.sample_size) * self.hop / self.sample_rate

    def latent_frames(self, seconds: float) -> int:
        return max(1, int(np.ceil(seconds * self.sample_rate / self.hop - 1e-6)))

    def _call_key(self, row: Row) -> Hashable:
        return self.latent_frames(row.seconds), row.guidance

    def _applied(self, config: StableAudioConfig, spec: MusicSpec) -> dict[str, Any]:
        return {**super()._applied(config, spec), "sampler": SAMPLER}

    # --- the work -----------------------------------------------------------------------------

    def _render(self, rows: list[Row], steps: int, tracker: StepTracker) -> list[np.ndarray]:
        import torch

        loaded = self._loaded
        frames = self.latent_frames(max(row.seconds for row in rows))
        generators = [torch.Generator("cpu").manual_seed(row.seed) for row in rows]
        # The initial noise is drawn per row from its own generator, on the CPU, so a row's
        # audio is the same on any device and in any batch.
        latents = torch.stack(
            [
                torch.randn((self.latent_channels, frames), generator=g, dtype=torch.float32)
                for g in generators
            ]
        ).to(loaded.device, loaded.dtype)
        with torch.inference_mode(), warnings.catch_warnings():
            # torchsde's Brownian tree warns on every step of the cosine DPM-Solver schedule
            # ("Should have ta>=t0"), a float rounding at the schedule's ends it tolerates.
            warnings.filterwarnings("ignore", message="Should have", module="torchsde")
            output = loaded.pipeline(
                prompt=[row.prompt for row in rows],
                negative_prompt=[row.negative for row in rows],
                audio_end_in_s=frames * self.hop / self.sample_rate,
                num_inference_steps=steps,
                guidance_scale=rows[0].guidance,  # one per call (see _call_key)
                generator=generators,
                latents=latents,
                output_type="latent",
                callback=tracker.on_step,
                callback_steps=1,
            )
            denoised = output.audios
            waveforms = [self._decode(denoised[i : i + 1]) for i in range(len(rows))]
        return [
            to_stem_audio(waveform, self.sample_rate, round(row.seconds * SAMPLE_RATE))
            for row, waveform in zip(rows, waveforms, strict=True)
        ]

    def _decode(self, latent: "torch.Tensor") -> np.ndarray:
        """One row at a time, in float32: the decoder's activations are large, and fp16 decodes
        are where NaNs come from. Non-finite audio fails the job rather than being stored."""
        import torch

        if not torch.isfinite(latent).all():
            raise GenerationFailed("stable_audio: the denoised latent is not finite (NaN or inf)")
        audio = self._loaded.pipeline.vae.decode(latent.to(torch.float32)).sample[0]
        result: np.ndarray = audio.float().cpu().numpy()
        if not np.isfinite(result).all():
            raise GenerationFailed("stable_audio: the decoded audio is not finite (NaN or inf)")
        return result
