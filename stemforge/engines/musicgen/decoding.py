"""MusicGen's autoregressive loop over audio tokens, for a batch of rows and one window.

transformers' ``generate`` is not used because a merged batch needs what it cannot give: one
random generator and one temperature per row (see ``sampling``), a key/value cache that does not
copy itself on every step, and prompts (window continuation) for every row at once. The loop
follows ``MusicgenForConditionalGeneration.generate`` step for step (delay pattern, guidance,
special tokens); a test checks that both give the same tokens when decoding greedily.

Sequence layout (the delay pattern): position 0 holds the start token; codebook ``k`` (delay
``d``) holds frame ``f`` at position ``1 + d + f`` and the start token before and after its frames.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer, EncoderDecoderCache

from stemforge.engines.musicgen.conditioning import CrossAttentionConditioning, StepConditioning
from stemforge.engines.musicgen.lean import LeanDecoder
from stemforge.engines.musicgen.sampling import RowSampler, apply_guidance
from stemforge.engines.musicgen.windows import decode_steps


class PreallocatedLayer(DynamicLayer):
    """A self-attention cache layer written in place into buffers sized for the whole window.

    transformers' dynamic layer concatenates on every step, copying the whole cache (GBs per step
    for a batch of stems); its static layer attends over the full buffer from the first step.
    This one does neither: it writes the new keys in place and hands back views of the filled part.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        batch, heads, _, head_dim = key_states.shape
        self._keys = key_states.new_empty((batch, heads, self.capacity, head_dim))
        self._values = value_states.new_empty((batch, heads, self.capacity, value_states.shape[-1]))
        self.keys, self.values = self._keys[:, :, :0], self._values[:, :, :0]
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"key/value cache full: {end} positions for a capacity of {self.capacity}")
        self._keys[:, :, self.length : end].copy_(key_states)
        self._values[:, :, self.length : end].copy_(value_states)
        self.length = end
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length


def make_cache(kind: str, num_layers: int, capacity: int) -> EncoderDecoderCache:
    """Self-attention cache (``kind``: "preallocated" or "dynamic") and a dynamic cross-attention
    cache, which is written once."""
    if kind == "dynamic":
        return EncoderDecoderCache(DynamicCache(), DynamicCache())
    layers: list[Any] = [PreallocatedLayer(capacity) for _ in range(num_layers)]
    return EncoderDecoderCache(Cache(layers=layers), DynamicCache())


# The logits (batch, codebooks, vocab) of the last position, given the new input ids, the step
# and the sequence length (conditioning prefix included) once they are in.
StepForward = Callable[[torch.Tensor, int, int], torch.Tensor]


def _transformers_forward(
    decoder: Any, conditioning: StepConditioning, kv_cache: str, capacity: int
) -> StepForward:
    inner = decoder.model  # the transformer without its heads: only the last position needs them
    cache = make_cache(kv_cache, decoder.config.num_hidden_layers, capacity)

    def forward(ids: torch.Tensor, step: int, total_length: int) -> torch.Tensor:
        extra = conditioning.first() if step == 0 else conditioning.later(total_length)
        hidden = inner(input_ids=ids, past_key_values=cache, use_cache=True, **extra).last_hidden_state
        last = hidden[:, -1]
        return torch.stack([head(last) for head in decoder.lm_heads], dim=1)

    return forward


def _lean_forward(lean: LeanDecoder, conditioning: StepConditioning, capacity: int) -> StepForward:
    if not isinstance(conditioning, CrossAttentionConditioning):
        raise TypeError("the lean decoder covers cross-attention conditioning (MusicGen) only")
    state = lean.start(conditioning.encoder_states, conditioning.encoder_mask, capacity)
    return lambda ids, step, total_length: lean.forward(state, ids)


# Called with the batch's input ids (rows * codebooks, positions) before each forward pass; the
# tests use it to see how the model was batched.
ForwardHook = Callable[[torch.Tensor], None]


def decode_window(
    decoder: Any,
    conditioning: StepConditioning,
    prompt: torch.Tensor,
    new_frames: Sequence[int],
    *,
    delays: Sequence[int],
    start_token: int,
    sampler: RowSampler,
    rows: Sequence[int],
    guidance_scale: float,
    kv_cache: str,
    on_forward: ForwardHook | None = None,
    on_step: Callable[[int], None] | None = None,
    lean: LeanDecoder | None = None,
) -> torch.Tensor:
    """Generate ``new_frames[r]`` frames for row ``r`` after ``prompt`` (``(rows, codebooks, prompt
    frames)``) and return the window's frames, prompt included: ``(rows, codebooks, prompt +
    max(new_frames))``; row ``r``'s frames past ``prompt + new_frames[r]`` are padding.

    Each row ends exactly as it would alone (its end padding is forced), so what a row gets never
    depends on longer rows in the same batch. With ``lean`` the forward passes go through it
    rather than transformers' modules (``kv_cache`` then does not apply). ``on_step(step)`` is
    called after each step (progress reports)."""
    num_rows, num_codebooks, prompt_frames = prompt.shape
    device = prompt.device
    longest = max(new_frames)
    length, steps = decode_steps(prompt_frames, longest, max(delays))
    # -1 marks the positions the model fills; everything else is forced (start, prompt, padding).
    sequence = torch.full((num_rows, num_codebooks, length), -1, dtype=torch.long, device=device)
    for codebook, delay in enumerate(delays):
        sequence[:, codebook, : 1 + delay] = start_token
        sequence[:, codebook, 1 + delay : 1 + delay + prompt_frames] = prompt[:, codebook]
        for row, new in enumerate(new_frames):
            sequence[row, codebook, 1 + delay + prompt_frames + new :] = start_token
    forced = sequence != -1

    guided = guidance_scale > 1.0
    capacity = conditioning.prefix + length
    if lean is not None:
        forward = _lean_forward(lean, conditioning, capacity)
    else:
        forward = _transformers_forward(decoder, conditioning, kv_cache, capacity)
    inputs = sequence[:, :, : prompt_frames + 1]
    for step in range(steps):
        position = prompt_frames + 1 + step  # the column this pass predicts
        ids = inputs.reshape(num_rows * num_codebooks, -1)
        if guided:
            ids = ids.repeat(2, 1)
        if on_forward is not None:
            on_forward(ids)
        logits = forward(ids, step, conditioning.prefix + position)  # (batch, codebooks, vocab)
        logits = apply_guidance(logits, guidance_scale)
        tokens = sampler.sample(logits, rows)
        column = torch.where(forced[:, :, position], sequence[:, :, position], tokens)
        sequence[:, :, position] = column
        inputs = column[:, :, None]
        if on_step is not None:
            on_step(step)

    frames = prompt_frames + longest
    return torch.stack(
        [sequence[:, codebook, 1 + delay : 1 + delay + frames] for codebook, delay in enumerate(delays)],
        dim=1,
    )
