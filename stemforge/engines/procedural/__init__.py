"""The procedural engine (``ProceduralEngine``): a band that reads one song plan; no model, no GPU."""

from stemforge.engines.procedural.engine import ProceduralEngine

__all__ = ["ProceduralEngine"]
