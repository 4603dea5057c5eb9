"""The MusicGen engine (``MusicGenEngine``); torch and transformers load only when it is built."""

from stemforge.engines.musicgen.engine import MusicGenEngine

__all__ = ["MusicGenEngine"]
