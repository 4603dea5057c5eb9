"""int8 Linear layers for the CPU decoder, with each row quantized on its own.

On CPU every decoding step streams all decoder weights from memory, so int8 weights (a quarter
of fp32's bytes) are the biggest single speed-up (about 2.5x per step here). torch's dynamic
quantization picks one activation scale for the whole batch, though: a row's result would then
depend on the other rows, and a request's audio on what it was merged with. Here every row is
mapped affinely onto [-1, 1] before the int8 matmul and mapped back after, so the activation
scale is the same for every row and every batch, and the integer matmul is exact: a row's output
depends on that row alone. (Per-row ranges are also finer than one range per batch.)
"""

import warnings

import torch
from torch import nn


class RowwiseInt8Linear(nn.Module):
    """``y = W x + b`` with per-output-channel int8 weights and per-row int8 activations."""

    weight_sum: torch.Tensor
    bias: torch.Tensor
    anchor: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # quantized tensors are deprecated in favour of torchao (not a dependency); the
            # pinned torch still has them.
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales, zero_points, axis=0, dtype=torch.qint8)
            # Two extra input columns with zero weights carry -1 and +1 in every row, pinning the
            # range the matmul quantizes to exactly [-1, 1] whatever float rounding does to the
            # rows' own extremes (an extra row would cost more: the kernels block by rows).
            padded = torch.cat(
                [qweight.int_repr(), torch.zeros((weight.shape[0], 2), dtype=torch.int8)], dim=1
            )
            qpadded = torch._make_per_channel_quantized_tensor(padded, scales, zero_points, 0)
            self._packed = torch.ops.quantized.linear_prepack(qpadded, None)
        # W (c 1) = c * rowsum(W): what centring a row takes away, given back after.
        self.register_buffer("weight_sum", qweight.dequantize().sum(dim=1)[None], persistent=False)
        bias = (
            linear.bias.detach().float().clone()
            if linear.bias is not None
            else torch.zeros(self.out_features)
        )
        self.register_buffer("bias", bias, persistent=False)
        self.register_buffer("anchor", torch.tensor([[-1.0, 1.0]]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features).float()
        low, high = torch.aminmax(rows, dim=-1, keepdim=True)
        centre = (high + low) * 0.5
        half = ((high - low) * 0.5).clamp_(min=1e-12)
        scale = half.reciprocal()
        normalized = torch.addcmul(-centre * scale, rows, scale).clamp_(-1.0, 1.0)
        normalized = torch.cat([normalized, self.anchor.expand(rows.shape[0], 2)], dim=1)
        product = torch.ops.quantized.linear_dynamic(normalized, self._packed, True)
        out = torch.addmm(self.bias, centre, self.weight_sum).addcmul_(product, half)
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
