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

Decoding (``CachedDecoding``) uses the same mixture one token at a time: the prompt and
every token generated so far fill the cache, so generation and autocomplete favour the
words of the text they continue. Beam search reorders the cache with the beams.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from recur.cells.base import check_positive_int
from recur.generation import select_rows


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


# -- decoding ---------------------------------------------------------------------------------


def next_log_probs(query: Tensor, keys: Tensor, words: Tensor, model_log_probs: Tensor,
                   cache: NeuralCache) -> Tensor:
    """Next-token log-probabilities with the cache mixed in, for one position per row.

    Args:
        query: (N, E) the model's output at this position (h_t).
        keys: (N, K, E) the outputs of the K ≤ ``size`` positions before it (h_i).
        words: (N, K) the token that followed each key (w_{i+1}).
        model_log_probs: (N, V) the model's log p(w | t).

    Returns:
        (N, V) float32; ``model_log_probs`` unchanged when K = 0.
    """
    model_log_probs = model_log_probs.float()
    if keys.shape[1] == 0:
        return model_log_probs
    scores = cache.theta * (keys.float() @ query.float().unsqueeze(-1)).squeeze(-1)  # (N, K)
    p_cache = torch.zeros_like(model_log_probs).scatter_add_(1, words, scores.softmax(-1))
    return torch.log((1 - cache.lam) * model_log_probs.exp() + cache.lam * p_cache)


class CacheState(NamedTuple):
    """A decoder's state with the cache (all tensors with the N rows first).

    ``model`` is the language model's own state; ``keys`` (N, K, E) are the outputs of the
    last K positions whose next token is known and ``words`` (N, K) those tokens;
    ``newest`` (N, E) is the output of the latest position, whose next token is the next
    one fed (None before any token)."""

    model: Any
    keys: Tensor | None = None
    words: Tensor | None = None
    newest: Tensor | None = None


class CachedDecoding:
    """A language model's decoding step (``recur.generation``) with the continuous cache.

    ``model`` needs ``features(tokens (N, T), state) -> ((N, T, E), state)`` and
    ``log_probs(features) -> (N, T, V)`` (``recur.models.LanguageModel``); its state is
    reordered by ``reorder_model_state`` (default ``select_rows(1)``: (L, N, H)). Use
    ``start(state)`` as the decoder's initial state, ``step`` as its step and ``reorder``
    as beam search's ``reorder_state``; ``prime`` feeds a whole prefix in one pass.
    Fed the tokens of a stream one by one, ``step``'s log-probabilities of the next tokens
    equal ``cache_log_probs`` of that stream.
    """

    def __init__(self, model: Any, cache: NeuralCache, reorder_model_state=None) -> None:
        self.model, self.cache = model, cache
        self.reorder_model_state = reorder_model_state or select_rows(1)

    def start(self, model_state: Any = None) -> CacheState:
        """The state before any token: the model's ``model_state`` and an empty cache."""
        return CacheState(model_state)

    def _feed(self, tokens: Tensor, state: CacheState) -> tuple[Tensor, CacheState]:
        """Feed tokens (N, T): their outputs (N, T, E) and the state after them."""
        features, model_state = self.model.features(tokens, state.model)     # (N, T, E)
        features = features.float()
        new_keys, new_words = features[:, :-1], tokens[:, 1:]
        if state.newest is not None:  # the newest output's next token is tokens[:, 0]
            new_keys = torch.cat([state.newest.unsqueeze(1), new_keys], 1)
            new_words = tokens
        keys, words = new_keys, new_words
        if state.keys is not None:
            keys, words = torch.cat([state.keys, keys], 1), torch.cat([state.words, words], 1)
        size = self.cache.size
        return features, CacheState(model_state, keys[:, -size:], words[:, -size:],
                                    features[:, -1])

    def prime(self, tokens: Tensor, state: CacheState) -> CacheState:
        """The state after feeding tokens (N, T) (a prompt) in one pass."""
        return self._feed(tokens, state)[1]

    def step(self, tokens: Tensor, state: CacheState) -> tuple[Tensor, CacheState]:
        """tokens (N,) -> (next-token log-probabilities (N, V) with the cache, state)."""
        features, state = self._feed(tokens.unsqueeze(1), state)
        model_log_probs = self.model.log_probs(features)[:, 0]                  # (N, V)
        return next_log_probs(state.newest, state.keys, state.words, model_log_probs,
                              self.cache), state

    def reorder(self, state: CacheState, index: Tensor) -> CacheState:
        """Rows ``index`` (N',) of the state (beam search's ``reorder_state``)."""
        pick = select_rows(0)
        return CacheState(self.reorder_model_state(state.model, index), pick(state.keys, index),
                          pick(state.words, index), pick(state.newest, index))
