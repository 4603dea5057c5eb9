"""Choosing the next token of every row: guidance, temperature, top-k/top-p, per-row randomness.

transformers' sampling draws the whole batch from one global generator, so a stem's audio would
depend on what it happened to be batched with. Here every row (one stem) owns a
``torch.Generator`` seeded from its request, and draws the same amount of noise at every step
whatever the batch, so a request gives the same audio alone or merged with others.
"""

from collections.abc import Sequence

import torch


class RowSampler:
    """Token choice for ``len(seeds)`` rows of ``num_codebooks`` codebooks each."""

    def __init__(
        self,
        seeds: Sequence[int],
        temperatures: Sequence[float],
        top_k: int,
        top_p: float,
        device: torch.device,
    ) -> None:
        if len(seeds) != len(temperatures):
            raise ValueError("one temperature per seed")
        self._generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self._temperatures = torch.tensor(list(temperatures), dtype=torch.float32, device=device)
        self._top_k = top_k
        self._top_p = top_p

    def __len__(self) -> int:
        return len(self._generators)

    def sample(self, logits: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        """``logits``: ``(len(rows), codebooks, vocab)`` for the rows numbered ``rows``; returns
        ``(len(rows), codebooks)`` token ids. Temperature 0 is greedy (argmax)."""
        logits = logits.float()
        index = torch.as_tensor(list(rows), device=logits.device)
        temperatures = self._temperatures[index]
        greedy = logits.argmax(dim=-1)
        sampled_rows = temperatures > 0
        if not bool(sampled_rows.any()):
            return greedy
        scaled = logits / temperatures.clamp(min=1e-6)[:, None, None]
        scaled = filter_top_k(scaled, self._top_k)
        scaled = filter_top_p(scaled, self._top_p)
        # Exponential race (Gumbel-max): argmax(p / E) with E ~ Exp(1) draws from p. Each row's
        # noise comes from its own generator and has a fixed size, so its stream never depends
        # on the other rows or on the values of the logits.
        noise = torch.stack(
            [
                torch.empty(logits.shape[1:], device=logits.device).exponential_(
                    1.0, generator=self._generators[row]
                )
                for row in rows
            ]
        )
        probs = torch.softmax(scaled, dim=-1)
        drawn = (probs / noise).argmax(dim=-1)
        return torch.where(sampled_rows[:, None], drawn, greedy)


def apply_guidance(logits: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance over a batch stacked as ``[conditional; unconditional]``."""
    if scale <= 1.0:
        return logits
    conditional, unconditional = logits.chunk(2, dim=0)
    return unconditional + (conditional - unconditional) * scale


def filter_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    if top_k <= 0 or top_k >= logits.shape[-1]:
        return logits
    threshold = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < threshold, float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches ``top_p``."""
    if top_p <= 0.0 or top_p >= 1.0:
        return logits
    ordered, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
    # A token goes when the tokens before it already reach top_p; the first always stays.
    drop_sorted = (cumulative - torch.softmax(ordered, dim=-1)) >= top_p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))
