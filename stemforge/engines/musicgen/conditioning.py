"""What the decoder is conditioned on, as keyword arguments of its forward passes.

The two architectures condition differently. MusicGen cross-attends to the projected T5 states on
every step. MusicGen-melody prepends ``[chroma; text]`` states to its own sequence, so they are
fed once, on the first step, and live on in the key/value cache.

Classifier-free guidance stacks the batch as ``[conditional rows; unconditional rows]``; the
unconditional rows see zeroed text (and, for melody, the "no melody" chroma), as in transformers'
``generate``, so outputs match it token for token.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class TextStates:
    """T5 states of every row's prompt, projected to the decoder width and masked."""

    hidden: torch.Tensor  # (rows, tokens, decoder hidden)
    mask: torch.Tensor  # (rows, tokens), 1 where there is a token


def encode_text(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_tokens: int,
    dtype: torch.dtype,
    pad_to_max: bool = False,
) -> TextStates:
    """Encode ``prompts`` (cut at ``max_tokens``) once per batch; ``dtype`` is the decoder's.

    ``pad_to_max`` pads every prompt to ``max_tokens`` rather than to the batch's longest, so a
    row's computation has the same shapes whatever it is batched with: padding is masked, but a
    different padded length still changes float rounding in T5 (enough to flip a sampled token
    now and then), and the melody decoder's positions start after the text."""
    device = model.text_encoder.device
    batch = tokenizer(
        list(prompts),
        padding="max_length" if pad_to_max else True,
        truncation=True,
        max_length=max_tokens,
        return_tensors="pt",
    ).to(device)
    with torch.inference_mode():
        hidden = model.text_encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        if model.text_encoder.config.hidden_size != model.decoder.config.hidden_size and (
            getattr(model.decoder.config, "cross_attention_hidden_size", None) is None
        ):
            projection = model.enc_to_dec_proj
            hidden = projection(hidden.to(projection.weight.dtype))
        hidden = hidden.to(dtype)
        mask = batch["attention_mask"]
        hidden = hidden * mask[..., None].to(hidden.dtype)
    return TextStates(hidden=hidden, mask=mask)


class StepConditioning:
    """Keyword arguments of the decoder's forward passes for one window's active rows."""

    prefix: int = 0  # positions the conditioning occupies in the decoder's own sequence

    def first(self) -> dict[str, Any]:
        raise NotImplementedError

    def later(self, total_length: int) -> dict[str, Any]:
        """Arguments once ``total_length`` positions (prefix included) are in the sequence."""
        raise NotImplementedError


class CrossAttentionConditioning(StepConditioning):
    def __init__(self, text: TextStates, rows: Sequence[int], guidance: bool) -> None:
        index = torch.as_tensor(list(rows), device=text.hidden.device)
        hidden, mask = text.hidden[index], text.mask[index]
        if guidance:
            hidden = torch.cat([hidden, torch.zeros_like(hidden)])
            mask = torch.cat([mask, torch.zeros_like(mask)])
        self.encoder_states, self.encoder_mask = hidden, mask
        self._kwargs = {"encoder_hidden_states": hidden, "encoder_attention_mask": mask}

    def first(self) -> dict[str, Any]:
        return self._kwargs

    def later(self, total_length: int) -> dict[str, Any]:
        return self._kwargs


class PrefixConditioning(StepConditioning):
    """MusicGen-melody: ``[chroma states; text states]`` before the audio tokens.

    Prompts of different lengths are padded to a common length in a batch; the pad positions are
    masked out of attention so a row sees what it would see alone. (The unconditional rows keep
    the conditional rows' mask, like transformers, which attends zeroed text.)
    """

    def __init__(
        self,
        model: Any,
        text: TextStates,
        rows: Sequence[int],
        chroma: Sequence[torch.Tensor],
        guidance: bool,
    ) -> None:
        """``chroma``: one ``(frames, num_chroma)`` one-hot tensor per row in ``rows``."""
        device = text.hidden.device
        index = torch.as_tensor(list(rows), device=device)
        text_hidden, text_mask = text.hidden[index], text.mask[index]

        def audio_states(per_row: Sequence[torch.Tensor]) -> torch.Tensor:
            states = [self._audio_states(model, c[None].to(device)) for c in per_row]
            return torch.cat(states).to(text_hidden.dtype)

        audio = audio_states(chroma)
        prefix = torch.cat([audio, text_hidden], dim=1)
        mask = torch.cat([torch.ones(audio.shape[:2], dtype=text_mask.dtype, device=device), text_mask], 1)
        if guidance:
            silent = torch.zeros((1, model.config.num_chroma))
            silent[:, 0] = 1  # transformers' and audiocraft's "no melody" chroma
            null_audio = audio_states([silent] * len(chroma))
            prefix = torch.cat([prefix, torch.cat([null_audio, torch.zeros_like(text_hidden)], dim=1)])
            mask = torch.cat([mask, mask])
        self.prefix = prefix.shape[1]
        self._prefix_states = prefix
        self._prefix_mask = mask

    @staticmethod
    def _audio_states(model: Any, chroma: torch.Tensor) -> torch.Tensor:
        states = chroma
        if model.config.num_chroma != model.decoder.config.hidden_size:
            projection = model.audio_enc_to_dec_proj
            states = projection(states.to(projection.weight.dtype))
        length = model.config.chroma_length
        # Shorter conditions are tiled, longer ones cut, to the length the model was trained on.
        if states.shape[1] < length:
            states = states.repeat(1, -(-length // states.shape[1]), 1)
        return states[:, :length]

    def first(self) -> dict[str, Any]:
        return {"encoder_hidden_states": self._prefix_states, "encoder_attention_mask": self._prefix_mask}

    def later(self, total_length: int) -> dict[str, Any]:
        mask = self._prefix_mask
        tail = torch.ones((mask.shape[0], total_length - self.prefix), dtype=mask.dtype, device=mask.device)
        return {"attention_mask": torch.cat([mask, tail], dim=1)}
