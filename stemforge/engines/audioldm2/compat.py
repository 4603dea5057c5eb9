"""AudioLDM 2 under transformers 5 (diffusers 0.42).

The checkpoints' language model is a ``GPT2Model``, which in transformers 5 no longer inherits
``GenerationMixin``; ``AudioLDM2Pipeline.generate_language_model`` still calls
``language_model._update_model_kwargs_for_generation`` and fails with ``AttributeError: 'GPT2Model'
object has no attribute '_update_model_kwargs_for_generation'`` (diffusers #12630). That helper
only appends ones to the attention mask and carries the cache, so binding ``GenerationMixin``'s to
the instance restores the loop. transformers 5 returns the cache as ``cache``, which the pipeline
never passes back, so every step recomputes the (8-state, short) sequence: the same states as a
cached loop, at a cost that is small beside the UNet's.
"""

import types
from typing import Any


def enable_language_model_generation(pipeline: Any) -> bool:
    """Patch ``pipeline.language_model`` where it needs it; returns whether anything was patched."""
    model = pipeline.language_model
    if hasattr(model, "_update_model_kwargs_for_generation"):
        return False
    from transformers.generation.utils import GenerationMixin

    model._update_model_kwargs_for_generation = types.MethodType(
        GenerationMixin._update_model_kwargs_for_generation, model
    )
    return True
