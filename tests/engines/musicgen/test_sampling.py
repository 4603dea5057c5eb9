"""Token choice: guidance, filters, and per-row randomness independent of the batch."""

import pytest

torch = pytest.importorskip("torch")

from stemforge.engines.musicgen.sampling import (  # noqa: E402
    RowSampler,
    apply_guidance,
    filter_top_k,
    filter_top_p,
)

CPU = torch.device("cpu")


def _logits(rows: int, seed: int = 0) -> "torch.Tensor":
    return torch.randn((rows, 4, 64), generator=torch.Generator().manual_seed(seed))


def test_a_row_draws_the_same_tokens_alone_or_batched() -> None:
    logits = _logits(2)
    alone = RowSampler([11], [1.0], 0, 0.0, CPU)
    batched = RowSampler([99, 11], [0.7, 1.0], 0, 0.0, CPU)
    for _ in range(5):
        assert torch.equal(alone.sample(logits[1:], [0]), batched.sample(logits, [0, 1])[1:])


def test_rows_can_leave_the_batch_without_disturbing_the_others() -> None:
    logits = _logits(3)
    full = RowSampler([1, 2, 3], [1.0] * 3, 0, 0.0, CPU)
    reference = RowSampler([3], [1.0], 0, 0.0, CPU)
    assert torch.equal(full.sample(logits, [0, 1, 2])[2], reference.sample(logits[2:], [0])[0])
    # Rows 0 and 1 have finished; row 2 carries on alone with its own stream.
    assert torch.equal(full.sample(logits[2:], [2]), reference.sample(logits[2:], [0]))


def test_seeds_change_draws_and_repeat_them() -> None:
    logits = torch.zeros((1, 4, 64))  # uniform: any difference comes from the seed
    first = RowSampler([5], [1.0], 0, 0.0, CPU).sample(logits, [0])
    assert torch.equal(first, RowSampler([5], [1.0], 0, 0.0, CPU).sample(logits, [0]))
    assert not torch.equal(first, RowSampler([6], [1.0], 0, 0.0, CPU).sample(logits, [0]))


def test_temperature_zero_is_greedy() -> None:
    logits = _logits(2)
    tokens = RowSampler([1, 2], [0.0, 0.0], 250, 0.0, CPU).sample(logits, [0, 1])
    assert torch.equal(tokens, logits.argmax(dim=-1))


def test_sampling_follows_the_distribution() -> None:
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1, 0.0]))[None, None].repeat(1, 2000, 1)
    tokens = RowSampler([3], [1.0], 0, 0.0, CPU).sample(logits, [0])
    freq = torch.bincount(tokens.flatten(), minlength=4).float() / tokens.numel()
    assert freq.tolist() == pytest.approx([0.7, 0.2, 0.1, 0.0], abs=0.03)


def test_top_k_and_top_p_keep_the_likely_tokens() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))[None, None]
    assert torch.isinf(filter_top_k(logits, 2)).tolist() == [[[False, False, True, True]]]
    assert torch.isinf(filter_top_p(logits, 0.75)).tolist() == [[[False, False, True, True]]]
    assert torch.isinf(filter_top_p(logits, 0.5)).tolist() == [[[False, True, True, True]]]
    assert torch.equal(filter_top_k(logits, 0), logits) and torch.equal(filter_top_p(logits, 0.0), logits)
    tokens = RowSampler([1], [1.0], 1, 0.0, CPU).sample(_logits(1), [0])
    assert torch.equal(tokens, _logits(1).argmax(dim=-1))


def test_guidance_extrapolates_from_unconditional_to_conditional() -> None:
    conditional, unconditional = torch.full((1, 4, 8), 2.0), torch.full((1, 4, 8), 1.0)
    stacked = torch.cat([conditional, unconditional])
    assert torch.allclose(apply_guidance(stacked, 3.0), torch.full((1, 4, 8), 4.0))
    assert apply_guidance(stacked, 1.0) is stacked
