"""MusicGen's decoder forward pass for CPU decoding, without transformers' per-call machinery.

On CPU a decoding step runs a few rows through 24 layers, so it is bound by the number of tensor
operations and by streaming weights, not by arithmetic: transformers' modules spend more time on
mask building, cache bookkeeping and small tensor calls than the int8 matmuls take. This module
runs the same layers (it reads the weights of the transformers model it is given, so it adds no
memory but the fused projections) with fewer, larger operations:

- the self-attention's query, key and value projections are one matmul, and the four codebook
  heads are one;
- the attention scaling is folded into the query weights;
- keys and values are written in place into buffers sized for the whole window;
- the cross-attention's keys and values and its padding bias are computed once per window.

Only the MusicGen decoder (cross-attention to the text) is covered; MusicGen-melody, which
prepends its conditioning to the sequence, and GPUs keep transformers' modules. A test checks
that both give the same logits.
"""

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stemforge.engines.musicgen.quantization import RowwiseInt8Linear


def fuse_linears(layers: list[nn.Module], row_scale: list[float] | None = None) -> nn.Module:
    """One layer computing the outputs of ``layers`` side by side. ``row_scale`` multiplies each
    layer's outputs (a power of two keeps int8 weights exact)."""
    scale = row_scale or [1.0] * len(layers)
    linears = [layer for layer in layers if type(layer) is nn.Linear]
    if len(linears) == len(layers):
        weight = torch.cat([layer.weight.detach() * s for layer, s in zip(linears, scale, strict=True)])
        fused = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        fused.weight = nn.Parameter(weight, requires_grad=False)
        if any(layer.bias is not None for layer in linears):
            biases = [
                layer.bias.detach() * s if layer.bias is not None else torch.zeros(layer.out_features)
                for layer, s in zip(linears, scale, strict=True)
            ]
            fused.bias = nn.Parameter(torch.cat(biases), requires_grad=False)
        return fused
    quantized = [layer for layer in layers if isinstance(layer, RowwiseInt8Linear)]
    if len(quantized) == len(layers):
        return RowwiseInt8Linear.concatenate(quantized, scale)
    raise TypeError(f"cannot fuse layers of types {sorted({type(layer).__name__ for layer in layers})}")


@dataclass
class _Layer:
    norm_self: nn.LayerNorm
    qkv: nn.Module
    out_self: nn.Module
    norm_cross: nn.LayerNorm
    query_cross: nn.Module
    key_cross: nn.Module
    value_cross: nn.Module
    out_cross: nn.Module
    norm_ffn: nn.LayerNorm
    fc1: nn.Module
    activation: Any
    fc2: nn.Module


class LeanState:
    """One window's buffers: self-attention keys/values and the cross-attention's inputs."""

    def __init__(
        self,
        decoder: "LeanDecoder",
        encoder_states: torch.Tensor,
        encoder_mask: torch.Tensor,
        capacity: int,
    ) -> None:
        batch = encoder_states.shape[0]
        heads, head_dim = decoder.num_heads, decoder.head_dim
        dtype = encoder_states.dtype
        self.length = 0
        self.capacity = capacity
        self.keys = [encoder_states.new_empty((batch, heads, capacity, head_dim)) for _ in decoder.layers]
        self.values = [encoder_states.new_empty((batch, heads, capacity, head_dim)) for _ in decoder.layers]
        # Rows without any text (the unconditional half of guidance) attend to zeroed states
        # through bias-free projections: their cross-attention adds exactly zero, so it is only
        # computed for the leading rows that have text (half the cross-attention's reads).
        has_text = encoder_mask.bool().any(dim=1)
        texted = int(has_text.sum())
        if not decoder.cross_attention_bias_free or not bool(has_text[:texted].all()):
            texted = batch
        self.texted_rows = texted
        states, mask = encoder_states[:texted], encoder_mask[:texted]
        self.cross_keys: list[torch.Tensor] = []
        self.cross_values: list[torch.Tensor] = []
        for layer in decoder.layers:
            self.cross_keys.append(decoder.split_heads(layer.key_cross(states)))
            self.cross_values.append(decoder.split_heads(layer.value_cross(states)))
        # transformers masks padded text with the dtype's lowest value, not -inf: a row of
        # zeroed text must not be NaN.
        self.cross_bias = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class LeanDecoder:
    """The forward pass of a ``MusicgenForCausalLM`` (fp32 or int8 Linear layers) on CPU."""

    def __init__(self, decoder: Any) -> None:
        config = decoder.config
        inner = decoder.model.decoder
        self.num_codebooks = config.num_codebooks
        self.num_heads = config.num_attention_heads
        self.hidden = config.hidden_size
        self.head_dim = self.hidden // self.num_heads
        self.vocab = decoder.lm_heads[0].out_features
        self.embed_scale = inner.embed_scale
        self.embeddings = [embedding.weight for embedding in inner.embed_tokens]
        self.positions = inner.embed_positions
        self.final_norm = inner.layer_norm
        self.lm_heads = fuse_linears(list(decoder.lm_heads))
        self.layers: list[_Layer] = []
        self.cross_attention_bias_free = all(
            getattr(module, "bias", None) is None
            for layer in inner.layers
            for module in (layer.encoder_attn.v_proj, layer.encoder_attn.out_proj)
        )
        for layer in inner.layers:
            attention, cross = layer.self_attn, layer.encoder_attn
            self.layers.append(
                _Layer(
                    norm_self=layer.self_attn_layer_norm,
                    qkv=fuse_linears(
                        [attention.q_proj, attention.k_proj, attention.v_proj],
                        [attention.scaling, 1.0, 1.0],
                    ),
                    out_self=attention.out_proj,
                    norm_cross=layer.encoder_attn_layer_norm,
                    query_cross=fuse_linears([cross.q_proj], [cross.scaling]),
                    key_cross=cross.k_proj,
                    value_cross=cross.v_proj,
                    out_cross=cross.out_proj,
                    norm_ffn=layer.final_layer_norm,
                    fc1=layer.fc1,
                    activation=layer.activation_fn,
                    fc2=layer.fc2,
                )
            )

    @staticmethod
    def supports(decoder: Any) -> bool:
        """Whether ``decoder`` is a plain MusicGen decoder (cross-attention to the text)."""
        layers = getattr(getattr(getattr(decoder, "model", None), "decoder", None), "layers", None)
        return layers is not None and len(layers) > 0 and hasattr(layers[0], "encoder_attn")

    def split_heads(self, states: torch.Tensor) -> torch.Tensor:
        """``(batch, positions, hidden)`` to contiguous ``(batch, heads, positions, head_dim)``."""
        batch, positions, _ = states.shape
        return states.view(batch, positions, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def start(self, encoder_states: torch.Tensor, encoder_mask: torch.Tensor, capacity: int) -> LeanState:
        """Buffers for a window of ``capacity`` positions, conditioned on the (projected) text."""
        return LeanState(self, encoder_states, encoder_mask, capacity)

    def forward(self, state: LeanState, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids``: ``(batch * codebooks, positions)`` after the ``state.length`` positions
        already seen; returns the logits ``(batch, codebooks, vocab)`` of the last position."""
        ids = input_ids.reshape(-1, self.num_codebooks, input_ids.shape[-1])
        batch, _, positions = ids.shape
        start, end = state.length, state.length + positions
        if end > state.capacity:
            raise RuntimeError(f"key/value cache full: {end} positions for a capacity of {state.capacity}")
        hidden = self.embeddings[0][ids[:, 0]]
        for codebook in range(1, self.num_codebooks):
            hidden = hidden + self.embeddings[codebook][ids[:, codebook]]
        if self.embed_scale != 1.0:
            hidden = hidden * self.embed_scale
        hidden = hidden + self.positions(ids, start)
        causal = None
        if positions > 1:
            # A prompt: each position sees the cache and the prompt up to itself.
            allowed = torch.ones((positions, end), dtype=torch.bool, device=hidden.device).tril(start)
            causal = torch.zeros((positions, end), dtype=hidden.dtype, device=hidden.device).masked_fill_(
                ~allowed, torch.finfo(hidden.dtype).min
            )
        for index, layer in enumerate(self.layers):
            hidden = self._layer(layer, hidden, state, index, start, end, causal)
        state.length = end
        last = self.final_norm(hidden[:, -1])
        return self.lm_heads(last).view(batch, self.num_codebooks, self.vocab)

    def _layer(
        self,
        layer: _Layer,
        hidden: torch.Tensor,
        state: LeanState,
        index: int,
        start: int,
        end: int,
        causal: torch.Tensor | None,
    ) -> torch.Tensor:
        batch, positions, _ = hidden.shape
        qkv = layer.qkv(layer.norm_self(hidden))
        qkv = qkv.view(batch, positions, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        keys, values = state.keys[index], state.values[index]
        keys[:, :, start:end].copy_(qkv[1])
        values[:, :, start:end].copy_(qkv[2])
        attended = _attend(qkv[0], keys[:, :, :end], values[:, :, :end], causal)
        hidden = hidden + layer.out_self(self._merge_heads(attended))

        texted = state.texted_rows
        if texted:
            query = self.split_heads(layer.query_cross(layer.norm_cross(hidden[:texted])))
            attended = _attend(query, state.cross_keys[index], state.cross_values[index], state.cross_bias)
            update = layer.out_cross(self._merge_heads(attended))
            if texted == batch:
                hidden = hidden + update
            else:
                hidden = torch.cat([hidden[:texted] + update, hidden[texted:]])

        return hidden + layer.fc2(layer.activation(layer.fc1(layer.norm_ffn(hidden))))

    def _merge_heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, _, positions, _ = states.shape
        return states.transpose(1, 2).reshape(batch, positions, self.hidden)


def _attend(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """Softmax attention of a pre-scaled ``query``; ``bias`` is added to the scores."""
    scores = torch.matmul(query, keys.transpose(-1, -2))
    if bias is not None:
        scores = scores + bias
    return torch.matmul(torch.softmax(scores, dim=-1), values)
