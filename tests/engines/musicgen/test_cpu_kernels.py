"""The CPU speed levers keep the maths: row-wise int8 Linear layers and the decode attention."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from stemforge.engines.musicgen.attention import attention, register  # noqa: E402
from stemforge.engines.musicgen.quantization import RowwiseInt8Linear, quantize_linears  # noqa: E402


def _relative_error(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    return (a - b).norm(dim=-1) / b.norm(dim=-1)


def test_int8_linear_is_close_to_fp32_for_rows_of_any_scale() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 512)
    # Rows 30x apart in scale: one range for the whole batch would crush the small ones.
    x = torch.randn(6, 3, 256) * torch.tensor([0.1, 0.3, 1.0, 3.0, 0.05, 1.5])[:, None, None] + 0.2
    with torch.inference_mode():
        error = _relative_error(RowwiseInt8Linear(linear)(x), linear(x))
    assert error.max() < 0.03


def test_int8_linear_rows_do_not_depend_on_the_batch() -> None:
    torch.manual_seed(1)
    quantized = RowwiseInt8Linear(torch.nn.Linear(128, 64))
    x = torch.randn(5, 128) * torch.tensor([1.0, 50.0, 0.01, 3.0, 7.0])[:, None]
    with torch.inference_mode():
        together = quantized(x)
        for row in range(5):
            assert torch.equal(quantized(x[row : row + 1]), together[row : row + 1])


def test_int8_linear_without_bias_and_of_a_constant_row() -> None:
    linear = torch.nn.Linear(64, 32, bias=False)
    with torch.inference_mode():
        out = RowwiseInt8Linear(linear)(torch.full((2, 64), 0.5))
        assert torch.allclose(out, linear(torch.full((2, 64), 0.5)), atol=1e-2)


def test_quantize_linears_replaces_every_linear() -> None:
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(8, 4))
    )
    assert quantize_linears(model) == 2
    assert not any(type(m) is torch.nn.Linear for m in model.modules())


@pytest.mark.parametrize("kv_dtype", [torch.float32, torch.bfloat16])
def test_decode_attention_matches_sdpa(kv_dtype: "torch.dtype") -> None:
    torch.manual_seed(2)
    query, key, value = torch.randn(3, 4, 1, 16), torch.randn(3, 4, 20, 16), torch.randn(3, 4, 20, 16)
    padding = torch.zeros(3, 1, 1, 20)
    padding[1, ..., 12:] = torch.finfo(torch.float32).min  # row 1 has 8 padded keys
    expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=padding)
    out, weights = attention(None, query, key.to(kv_dtype), value.to(kv_dtype), padding, scaling=16**-0.5)
    assert weights is None and out.dtype == torch.float32
    tolerance = 1e-5 if kv_dtype == torch.float32 else 2e-2  # keys of any dtype work
    assert torch.allclose(out, expected.transpose(1, 2), atol=tolerance)
    assert register() == register()  # registering twice is harmless
