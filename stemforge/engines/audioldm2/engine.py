"""The AudioLDM 2 engine: stems from a diffusers ``AudioLDM2Pipeline`` (``cvssp/audioldm2-music``).

CLAP and T5 encode the prompt, a GPT-2 language model turns them into the UNet's conditioning,
the UNet denoises a mel-spectrogram latent, the VAE decodes the mel spectrogram and a HiFi-GAN
vocoder makes 16 kHz mono audio, resampled here to 44.1 kHz stereo. Its bandwidth stays 8 kHz:
/health and the docs say so. The model's window is its training length (10.24 s); longer stems
are windows on the bar grid like every diffusion engine's.
"""

from typing import Any

import numpy as np

from stemforge.engines.audioldm2.config import AudioLDM2Config
from stemforge.engines.checkpoints import AUDIOLDM2
from stemforge.engines.diffusion.engine import DiffusionEngine, Row, StepTracker, to_stem_audio
from stemforge.music.spec import SAMPLE_RATE

ENGINE_NAME = "audioldm2"


class AudioLDM2Engine(DiffusionEngine[AudioLDM2Config]):
    name = ENGINE_NAME
    config_type = AudioLDM2Config
    label = "AudioLDM 2"
    checkpoint = AUDIOLDM2
    settings_field = "audioldm2_model"
    pipeline_class = "AudioLDM2Pipeline"
    extra = "audioldm2"

    # --- the pipeline's geometry --------------------------------------------------------------

    @property
    def vocoder_rate(self) -> int:
        return int(self._loaded.pipeline.vocoder.config.sampling_rate)

    @property
    def seconds_per_mel_frame(self) -> float:
        vocoder = self._loaded.pipeline.vocoder.config
        return float(np.prod(vocoder.upsample_rates)) / vocoder.sampling_rate

    @property
    def max_seconds(self) -> float:
        """The UNet's training length (10.24 s for audioldm2-music)."""
        pipeline = self._loaded.pipeline
        latent_rows = pipeline.unet.config.sample_size * pipeline.vae_scale_factor
        return float(latent_rows * self.seconds_per_mel_frame)

    def mel_frames(self, seconds: float) -> int:
        """Spectrogram height for ``seconds``, rounded up to what the VAE can take (as the
        pipeline does)."""
        factor = int(self._loaded.pipeline.vae_scale_factor)
        height = int(np.ceil(seconds / self.seconds_per_mel_frame - 1e-6))
        return int(np.ceil(height / factor)) * factor

    def _after_load(self) -> None:
        from stemforge.engines.audioldm2.compat import enable_language_model_generation

        enable_language_model_generation(self._loaded.pipeline)

    def _call_key(self, row: Row) -> Any:
        return self.mel_frames(row.seconds), row.guidance

    def details(self) -> dict[str, Any]:
        return {
            **super().details(),
            "native_sample_rate": self.vocoder_rate,
            # The vocoder makes 16 kHz audio: nothing above 8 kHz, whatever the file's rate.
            "bandwidth_hz": self.vocoder_rate // 2,
        }

    # --- the work -----------------------------------------------------------------------------

    def _render(self, rows: list[Row], steps: int, tracker: StepTracker) -> list[np.ndarray]:
        import torch

        loaded = self._loaded
        pipeline = loaded.pipeline
        height = self.mel_frames(max(row.seconds for row in rows))
        factor = int(pipeline.vae_scale_factor)
        shape = (
            int(pipeline.unet.config.in_channels),
            height // factor,
            int(pipeline.vocoder.config.model_in_dim) // factor,
        )
        generators = [torch.Generator("cpu").manual_seed(row.seed) for row in rows]
        # The initial noise is drawn per row from its own generator, on the CPU: a row's audio is
        # the same in any batch. DDIM with eta 0 adds no noise of its own.
        latents = torch.stack([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
        with torch.inference_mode():
            conditioning = self._encode(rows)
            output = pipeline(
                **conditioning,
                audio_length_in_s=height * self.seconds_per_mel_frame,
                num_inference_steps=steps,
                guidance_scale=rows[0].guidance,  # one per call (see _call_key)
                generator=generators,
                latents=latents.to(loaded.device, loaded.dtype),
                callback=tracker.on_step,
                callback_steps=1,
                output_type="np",
            )
        audios = np.asarray(output.audios, dtype=np.float32)
        if audios.ndim == 1:
            audios = audios[None]
        return [
            to_stem_audio(audio, self.vocoder_rate, round(row.seconds * SAMPLE_RATE))
            for row, audio in zip(rows, audios, strict=True)
        ]

    def _encode(self, rows: list[Row]) -> dict[str, Any]:
        """The pipeline's text conditioning, computed one row at a time and then padded: the
        pipeline pads T5 tokens to the batch's longest prompt, and GPT-2 then generates its
        conditioning states after those pads, so a row's audio would change with its batch
        mates. The UNet masks the padded T5 states, so padding them afterwards changes nothing."""
        import torch

        pipeline = self._loaded.pipeline
        guided = rows[0].guidance > 1.0
        encoded = [
            pipeline.encode_prompt(
                [row.prompt],
                self._loaded.device,
                1,
                guided,
                negative_prompt=[row.negative] if guided else None,
            )
            for row in rows
        ]
        longest = max(embeds.shape[1] for embeds, _, _ in encoded)

        def padded(embeds: "torch.Tensor", mask: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
            extra = longest - embeds.shape[1]
            return (
                torch.nn.functional.pad(embeds, (0, 0, 0, extra)),
                torch.nn.functional.pad(mask, (0, extra)),
            )

        parts = [(*padded(embeds, mask), generated) for embeds, mask, generated in encoded]
        # With guidance, encode_prompt returns (negative, positive) stacked on the batch axis.
        positive = -1
        conditioning: dict[str, Any] = {
            "prompt_embeds": torch.cat([e[positive:] for e, _, _ in parts]),
            "attention_mask": torch.cat([m[positive:] for _, m, _ in parts]),
            "generated_prompt_embeds": torch.cat([g[positive:] for _, _, g in parts]),
        }
        if guided:
            conditioning |= {
                "negative_prompt_embeds": torch.cat([e[:1] for e, _, _ in parts]),
                "negative_attention_mask": torch.cat([m[:1] for _, m, _ in parts]),
                "negative_generated_prompt_embeds": torch.cat([g[:1] for _, _, g in parts]),
            }
        return conditioning
