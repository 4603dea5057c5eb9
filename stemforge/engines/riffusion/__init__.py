"""The Riffusion engine (Stable Diffusion painting spectrograms); torch and diffusers load only
when it is built, and the spectrogram codec (``spectrogram``) needs neither."""

from stemforge.engines.riffusion.engine import RiffusionEngine

__all__ = ["RiffusionEngine"]
