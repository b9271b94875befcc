"""The continuous cache of Grave, Joulin & Usunier (2017), "Improving Neural Language Models
with a Continuous Cache": a language model's evaluation-time memory of its own recent hidden
states and the words that followed them.

At position t the model's output h_t (the vector the softmax scores) is compared with the
outputs h_i of the last ``size`` positions i < t; each past position votes for the word that
came after it, w_{i+1}:

    p_cache(w | t) = Σ_{i : w_{i+1} = w} softmax_i(θ h_tᵀ h_i)
    p(w | t)       = (1 − λ) p_model(w | t) + λ p_cache(w | t)

Nothing is trained: θ (how sharply similar contexts are preferred) and λ (how much the cache
is trusted) are chosen on held-out text (``fit_cache``). Recently seen words — names, numbers,
the topic of an article — become likely again, which a fixed-size recurrent state forgets.
A position with no earlier positions (the first of a stream) keeps p_model.

Streams are independent: with B parallel streams each one has its own cache, and the state
of the model is carried across windows exactly as in plain evaluation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from recur.cells.base import check_positive_int


@dataclass(frozen=True)
class NeuralCache:
    """Cache settings: ``size`` past positions, similarity scale ``theta``, weight ``lam``."""

    size: int = 500
    theta: float = 0.3
    lam: float = 0.1

    def __post_init__(self) -> None:
        check_positive_int("cache size", self.size)
        if isinstance(self.theta, bool) or not isinstance(self.theta, int | float) \
                or not math.isfinite(self.theta) or self.theta < 0:
            raise ValueError(f"cache theta must be a finite number >= 0, got {self.theta!r}")
        if isinstance(self.lam, bool) or not isinstance(self.lam, int | float) \
                or not 0 <= self.lam < 1:
            raise ValueError(f"cache lambda must be a number in [0, 1), got {self.lam!r}")


class _Chunk(NamedTuple):
    """Positions [start, end) of every stream against the keys before them."""

    start: int
    end: int
    dots: Tensor       # (B, C, K) h_tᵀ h_i
    age: Tensor        # (C, K) t − i (a key is visible when 1 <= age <= size)
    votes: Tensor      # (B, C, K) whether key i's next word is position t's target
    log_p: Tensor      # (B, C) the model's log p(target)


def _chunks(hidden: Tensor, targets: Tensor, model_log_probs: Tensor, size: int,
            chunk: int) -> Iterator[_Chunk]:
    B, L, _ = hidden.shape
    if targets.shape != (B, L) or model_log_probs.shape != (B, L):
        raise ValueError(f"targets and model_log_probs must be (B, L) = {(B, L)}, got "
                         f"{tuple(targets.shape)} and {tuple(model_log_probs.shape)}")
    hidden, model_log_probs = hidden.float(), model_log_probs.float()
    for start in range(0, L, chunk):
        end = min(L, start + chunk)
        first = max(0, start - size)                           # oldest key any row sees
        keys = hidden[:, first:end]                            # (B, K, E)
        age = torch.arange(start, end).unsqueeze(1) - torch.arange(first, end).unsqueeze(0)
        # the word after key position i is targets[i]: does it equal the query's target?
        votes = targets[:, first:end].unsqueeze(1) == targets[:, start:end].unsqueeze(2)
        yield _Chunk(start, end, hidden[:, start:end] @ keys.transpose(1, 2), age, votes,
                     model_log_probs[:, start:end])


def _mix(piece: _Chunk, size: int, theta: float, lams: Iterable[float]) -> Iterator[Tensor]:
    """log p(target) of the chunk's positions for each λ: (B, C) tensors."""
    visible = (piece.age >= 1) & (piece.age <= size)           # (C, K)
    scores = (theta * piece.dots).masked_fill(~visible, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)    # a row with no key: all 0
    p_cache = (weights * piece.votes).sum(-1)                  # (B, C)
    has_keys = visible.any(-1).unsqueeze(0)                    # (1, C)
    p_model = piece.log_p.exp()
    for lam in lams:
        mixed = torch.log((1 - lam) * p_model + lam * p_cache)
        yield torch.where(has_keys, mixed, piece.log_p)


def cache_log_probs(hidden: Tensor, targets: Tensor, model_log_probs: Tensor,
                    cache: NeuralCache, chunk: int = 256) -> Tensor:
    """log p(target) of every position with the cache mixed in.

    Args:
        hidden: (B, L, E) the model's output vectors, one stream per row.
        targets: (B, L) the next token of every position (w_{t+1}).
        model_log_probs: (B, L) the model's log p(target).
        cache: the settings.
        chunk: positions scored at once (memory ≈ 3 · B · chunk · (size + chunk) floats).

    Returns:
        (B, L) float32.
    """
    out = torch.empty(targets.shape)
    for piece in _chunks(hidden, targets, model_log_probs, cache.size, chunk):
        (out[:, piece.start:piece.end],) = _mix(piece, cache.size, cache.theta, [cache.lam])
    return out


def fit_cache(hidden: Tensor, targets: Tensor, model_log_probs: Tensor,
              sizes: Iterable[int] = (100, 500, 1000, 2000),
              thetas: Iterable[float] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
              lams: Iterable[float] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4), chunk: int = 256
              ) -> tuple[NeuralCache, float]:
    """The grid point with the lowest mean loss (nats/token) on the given positions:
    (settings, loss). Tune on text the reported numbers are not measured on. The dot
    products are computed once, for the largest size."""
    sizes, thetas, lams = list(sizes), list(thetas), list(lams)
    grid = [NeuralCache(n, theta, lam) for n in sizes for theta in thetas for lam in lams]
    if not grid:
        raise ValueError("fit_cache needs at least one size, theta and lambda")
    totals = dict.fromkeys(grid, 0.0)
    for piece in _chunks(hidden, targets, model_log_probs, max(sizes), chunk):
        for n, theta in itertools.product(sizes, thetas):
            for lam, log_p in zip(lams, _mix(piece, n, theta, lams), strict=True):
                totals[NeuralCache(n, theta, lam)] += float(log_p.sum())
    best = max(grid, key=totals.__getitem__)
    return best, -totals[best] / targets.numel()
