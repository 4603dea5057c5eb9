"""AudioLDM 2 under transformers 5 (diffusers 0.42).

The pipeline turns the CLAP and T5 embeddings into its UNet's conditioning by letting a GPT-2
``GPT2Model`` generate 8 hidden states. Its loop (``generate_language_model``) calls private
generation helpers that ``GPT2Model`` no longer has in transformers 5 (``AttributeError: 'GPT2Model'
object has no attribute '_update_model_kwargs_for_generation'``, diffusers #12630), and passes
``past_key_values``, which transformers says it removes in 5.40. The replacement here uses only
GPT-2's public forward: each step runs the whole (short: at most 128 + 8 positions) sequence
and appends the last position's final hidden state, which is what the cached loop computes.
"""

from typing import Any

_MARK = "_stemforge_language_model_loop"


def enable_language_model_generation(pipeline: Any) -> bool:
    """Give ``pipeline`` the loop above; returns whether it was replaced now (False: already)."""
    if getattr(pipeline, _MARK, False):
        return False
    model = pipeline.language_model

    def generate_language_model(
        inputs_embeds: Any = None, max_new_tokens: int | None = 8, **model_kwargs: Any
    ) -> Any:
        import torch

        steps = max_new_tokens if max_new_tokens is not None else model.config.max_new_tokens
        mask = model_kwargs.get("attention_mask")
        for _ in range(steps):
            output = model(
                inputs_embeds=inputs_embeds, attention_mask=mask, output_hidden_states=True, return_dict=True
            )
            inputs_embeds = torch.cat([inputs_embeds, output.hidden_states[-1][:, -1:, :]], dim=1)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        return inputs_embeds[:, -steps:, :]

    pipeline.generate_language_model = generate_language_model
    setattr(pipeline, _MARK, True)
    return True
