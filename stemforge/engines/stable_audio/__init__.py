"""The Stable Audio Open engine (diffusers). Importing this package imports neither torch nor
diffusers: the engine imports them when it is built."""

from stemforge.engines.stable_audio.engine import StableAudioEngine

__all__ = ["StableAudioEngine"]
