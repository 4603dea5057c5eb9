"""int8 Linear layers for the CPU decoder, with each row quantized on its own.

On CPU every decoding step streams all decoder weights from memory, so int8 weights (a quarter
of fp32's bytes) are the biggest single speed-up (about 2.5x per step here). torch's dynamic
quantization picks one activation scale for the whole batch, though: a row's result would then
depend on the other rows, and a request's audio on what it was merged with. Here every row is
divided by its own largest magnitude before the int8 matmul and multiplied back after, so the
activation scale is the same for every row and every batch, and the integer matmul is exact: a
row's output depends on that row alone. (Per-row ranges are also finer than one range per batch.)

A decoding step calls these layers about 170 times on a handful of rows, so what surrounds the
matmul is kept to five tensor operations: at that size each operation costs more than its
arithmetic.
"""

import warnings
from collections.abc import Sequence

import torch
from torch import nn

# Two extra input columns with zero weights carry -1 and +1 in every row, pinning the range the
# matmul quantizes to exactly [-1, 1] whatever the rows hold (an extra row would cost more: the
# kernels block by rows).
_ANCHOR = 2


class RowwiseInt8Linear(nn.Module):
    """``y = W x + b`` with per-output-channel int8 weights and per-row int8 activations."""

    bias: torch.Tensor | None
    anchor: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
        quantized = torch.round(weight / scales[:, None].float()).clamp(-127, 127).to(torch.int8)
        bias = linear.bias.detach().float().clone() if linear.bias is not None else None
        self._setup(quantized, scales, bias)

    @classmethod
    def concatenate(
        cls, layers: Sequence["RowwiseInt8Linear"], multipliers: Sequence[float] | None = None
    ) -> "RowwiseInt8Linear":
        """One layer whose outputs are those of ``layers`` side by side (their inputs must agree),
        each layer's outputs times its multiplier. Exact: each output channel keeps its own int8
        row, and a multiplier only changes its scale."""
        if len({layer.in_features for layer in layers}) != 1:
            raise ValueError("layers to concatenate must take the same input size")
        factors = list(multipliers) if multipliers is not None else [1.0] * len(layers)
        if len(factors) != len(layers):
            raise ValueError("one multiplier per layer")
        biases = [
            (layer.bias if layer.bias is not None else torch.zeros(layer.out_features)) * factor
            for layer, factor in zip(layers, factors, strict=True)
        ]
        weights = [layer._unpack() for layer in layers]
        fused = cls.__new__(cls)
        nn.Module.__init__(fused)
        fused._setup(
            torch.cat([weight for weight, _ in weights]),
            torch.cat([scales * factor for (_, scales), factor in zip(weights, factors, strict=True)]),
            torch.cat(biases) if any(layer.bias is not None for layer in layers) else None,
        )
        return fused

    def _setup(self, weight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> None:
        """``weight``: int8 ``(out, in)``; ``scales``: float64 ``(out,)``."""
        self.out_features, self.in_features = weight.shape
        padded = torch.cat([weight, torch.zeros((weight.shape[0], _ANCHOR), dtype=torch.int8)], dim=1)
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # quantized tensors are deprecated in favour of torchao (not a dependency); the
            # pinned torch still has them.
            warnings.simplefilter("ignore")
            qpadded = torch._make_per_channel_quantized_tensor(padded, scales, zero_points, 0)
            self._packed = torch.ops.quantized.linear_prepack(qpadded, None)
        self.register_buffer("bias", bias, persistent=False)
        self.register_buffer("anchor", torch.tensor([-1.0, 1.0]), persistent=False)

    def _unpack(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The int8 weight ``(out, in)`` and its float64 scale per output channel."""
        qweight, _ = torch.ops.quantized.linear_unpack(self._packed)
        return qweight.int_repr()[:, : self.in_features].contiguous(), qweight.q_per_channel_scales()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features).float()
        magnitude = rows.abs().amax(dim=-1, keepdim=True).clamp_(min=1e-30)
        # x / max|x| lies in [-1, 1], the extremes exactly; the anchor columns fix the range.
        normalized = torch.cat([rows / magnitude, self.anchor.expand(rows.shape[0], _ANCHOR)], dim=1)
        product = torch.ops.quantized.linear_dynamic(normalized, self._packed, True)
        out = product.mul_(magnitude) if self.bias is None else torch.addcmul(self.bias, product, magnitude)
        return out.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_linears(module: nn.Module) -> int:
    """Replace every ``nn.Linear`` under ``module`` in place; returns how many were replaced."""
    targets = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear
    ]
    for parent, name, child in targets:
        setattr(parent, name, RowwiseInt8Linear(child))
    return len(targets)
