"""The AudioLDM 2 engine (diffusers); torch and diffusers load only when it is built."""

from stemforge.engines.audioldm2.engine import AudioLDM2Engine

__all__ = ["AudioLDM2Engine"]
