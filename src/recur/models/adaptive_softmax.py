"""Adaptive softmax with its output embedding tied to the input embedding.

Grave et al. 2017, "Efficient softmax approximation for GPUs", §4 (the two-level tree
with a short list in the head), with the output words' vectors tied to the input
embedding (Press & Wolf 2017) in the manner of Baevski & Auli 2019, "Adaptive Input
Representations for Neural Language Modeling", §3 (tail clusters reach the shared
vectors through a projection).

The words are ranked by training frequency (``order``: rank → word id; ``rank``: word id
→ rank) and cut at the cutoffs ``c_1 < c_2 < … < c_n < V``::

    head     ranks [0, c_1)        + one logit per tail cluster      dimension D
    tail 1   ranks [c_1, c_2)                                         dimension D / div
    tail n   ranks [c_n, V)                                           dimension D / div^n

With ``e_w`` the word's (input) embedding row, ``b_w`` its bias, ``h`` the top layer's
output (projected to the embedding size D when tied):

    head logit of word w      h · e_w + b_w
    head logit of cluster i   h · u_i + a_i
    tail logit of word w ∈ i  (h Q_i) · (e_w K_i) + b_w        Q_i, K_i: D × d_i

    log p(w) = log softmax(head)[w]                                   w in the head
    log p(w) = log softmax(head)[cluster i] + log softmax(tail_i)[w]  w in cluster i

so p is an exact distribution over all V words (``log_prob`` returns it). Training
(``loss``) evaluates a cluster's softmax only for the rows whose target lies in it; the
cost per token falls from V·D multiply-adds to (c_1 + n)·D plus the tail's share. Q_i and
K_i start equal, with orthonormal columns, so at the start h Q_i K_iᵀ e_wᵀ is h · e_w
seen through a d_i-dimensional subspace.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

IGNORE_INDEX = -100  # targets to skip (cross_entropy's convention)


def check_cutoffs(cutoffs: object, vocab_size: int | None,
                  name: str = "adaptive_cutoffs") -> tuple[int, ...]:
    """``cutoffs`` as a tuple of strictly increasing ints in (0, vocab_size) (no upper
    bound when vocab_size is None), or a ValueError naming ``name``."""
    bound = "" if vocab_size is None else f", each below vocab_size = {vocab_size}"
    values = None
    if not isinstance(cutoffs, str | bytes) and hasattr(cutoffs, "__iter__"):
        values = tuple(cutoffs)
    if not values or any(isinstance(c, bool) or not isinstance(c, int) for c in values) \
            or any(b <= a for a, b in zip(values, values[1:], strict=False)) \
            or values[0] <= 0 or (vocab_size is not None and values[-1] >= vocab_size):
        raise ValueError(f"{name} must be strictly increasing positive ints{bound}, "
                         f"got {cutoffs!r}")
    return values


def frequency_order(ids: Tensor, vocab_size: int) -> Tensor:
    """Word ids sorted by descending count in ``ids`` (ties: lower id first): (V,) int64."""
    counts = torch.bincount(ids.flatten().clamp(min=0), minlength=vocab_size)[:vocab_size]
    return torch.argsort(counts, descending=True, stable=True)


class AdaptiveSoftmax(nn.Module):
    """The output layer over V words: head + tail clusters (see the module docstring).

    Args:
        dim: D, the size of the vectors fed in (and of the tied embedding rows).
        vocab_size: V.
        cutoffs: c_1 < … < c_n, each in (0, V).
        div: tail cluster i has dimension max(1, D // div**i).
        tied: the word vectors are passed in (``weight``, the input embedding (V, D));
            otherwise this module owns its own (V, D) matrix.
    """

    def __init__(self, dim: int, vocab_size: int, cutoffs: tuple[int, ...], div: int = 4,
                 tied: bool = True) -> None:
        super().__init__()
        self.cutoffs = check_cutoffs(cutoffs, vocab_size)
        self.bounds = (*self.cutoffs, vocab_size)   # tail i covers ranks [bounds[i], bounds[i+1])
        self.vocab_size, self.dim = vocab_size, dim
        n = len(self.cutoffs)
        self.weight = None if tied else nn.Parameter(torch.empty(vocab_size, dim).uniform_(-0.1, 0.1))
        self.bias = nn.Parameter(torch.zeros(vocab_size))                     # (V,) by word id
        self.cluster_weight = nn.Parameter(torch.empty(n, dim).uniform_(-0.1, 0.1))  # (n, D)
        sizes = torch.tensor([b - a for a, b in zip(self.bounds, self.bounds[1:], strict=False)])
        # log of each cluster's size: with the other logits ~0 at the start, every word
        # starts at probability ~1 / V, as with the full softmax
        self.cluster_bias = nn.Parameter(sizes.double().log().float())       # (n,)
        self.query = nn.ModuleList()   # Q_i on h
        self.key = nn.ModuleList()     # K_i on the word vectors
        for i in range(n):
            d = max(1, dim // div ** (i + 1))
            q, k = nn.Linear(dim, d, bias=False), nn.Linear(dim, d, bias=False)
            with torch.no_grad():
                nn.init.orthogonal_(q.weight)
                k.weight.copy_(q.weight)
            self.query.append(q)
            self.key.append(k)
        self.register_buffer("order", torch.arange(vocab_size))  # rank -> word id
        self.register_buffer("rank", torch.arange(vocab_size))   # word id -> rank

    def set_order(self, order: Tensor) -> None:
        """Rank the words: ``order`` (V,) holds the word ids, most frequent first."""
        if order.shape != (self.vocab_size,) or not torch.equal(
                order.sort().values, torch.arange(self.vocab_size)):
            raise ValueError(f"order must be a permutation of the {self.vocab_size} word ids")
        self.order.copy_(order)
        self.rank.copy_(torch.argsort(order))

    def _weight(self, weight: Tensor | None) -> Tensor:
        w = self.weight if weight is None else weight
        if w is None:
            raise ValueError("this adaptive softmax is tied: pass the embedding matrix")
        return w

    def _head(self, h: Tensor, w: Tensor) -> Tensor:
        """Head logits (N, c_1 + n): the short list's words, then one per tail cluster."""
        words = self.order[:self.cutoffs[0]]                                   # (c_1,)
        weight = torch.cat([w.index_select(0, words), self.cluster_weight])   # (c_1 + n, D)
        bias = torch.cat([self.bias.index_select(0, words), self.cluster_bias])
        return nn.functional.linear(h, weight, bias)                           # (N, c_1 + n)

    def _tail(self, i: int, h: Tensor, w: Tensor, keys_first: bool | None = None) -> Tensor:
        """Tail cluster i's logits (N, size_i) for the rows h (N, D).

        (h Q_i) · (e_w K_i) is computed in the cheaper order for N: the keys e_w K_i of
        every word of the cluster first (training: many rows), or (h Q_i) K_iᵀ first
        (generation: a few rows; an exported graph), unless ``keys_first`` says which."""
        words = self.order[self.bounds[i]:self.bounds[i + 1]]                  # (size_i,)
        bias = self.bias.index_select(0, words)                                # (size_i,)
        q = self.query[i](h)                                                   # (N, d_i)
        n, (d, D) = len(words), self.key[i].weight.shape
        if keys_first is None and torch.compiler.is_compiling():
            keys_first = False  # an exported step (a few rows); N must stay symbolic
        if keys_first is None:
            keys_first = n * D * d + len(h) * d * n <= len(h) * d * D + len(h) * D * n
        if keys_first:
            keys = self.key[i](w.index_select(0, words))                       # (size_i, d_i)
            return nn.functional.linear(q, keys, bias)                         # (N, size_i)
        back = q @ self.key[i].weight                                          # (N, D)
        return nn.functional.linear(back, w.index_select(0, words), bias)      # (N, size_i)

    def log_prob(self, h: Tensor, weight: Tensor | None = None) -> Tensor:
        """log p(w | h) for every word: h (..., D) -> (..., V) float32, by word id.

        ``weight``: the tied embedding (V, D) (None when untied)."""
        w = self._weight(weight)
        shape = h.shape[:-1]
        h = h.reshape(-1, self.dim)                                            # (N, D)
        head = self._head(h, w).float().log_softmax(-1)                        # (N, c_1 + n)
        c1 = self.cutoffs[0]
        pieces = [head[:, :c1]]
        for i in range(len(self.cutoffs)):
            tail = self._tail(i, h, w).float().log_softmax(-1)                 # (N, size_i)
            pieces.append(head[:, c1 + i:c1 + i + 1] + tail)
        by_rank = torch.cat(pieces, 1)                                         # (N, V)
        return by_rank.index_select(1, self.rank).view(*shape, self.vocab_size)

    def loss(self, h: Tensor, targets: Tensor, weight: Tensor | None = None) -> Tensor:
        """Mean negative log-likelihood (nats) of ``targets`` (...,) given h (..., D),
        skipping targets equal to -100 — the same number as cross-entropy over
        ``log_prob``, computing each tail cluster only for the rows that need it."""
        w = self._weight(weight)
        h = h.reshape(-1, self.dim)                                            # (N, D)
        targets = targets.reshape(-1)                                          # (N,)
        valid = targets != IGNORE_INDEX
        rank = self.rank[targets.clamp(min=0)]                                 # (N,)
        c1 = self.cutoffs[0]
        cluster = torch.bucketize(rank, torch.tensor(self.cutoffs), right=True)  # (N,) 0 = head
        head_target = torch.where(cluster == 0, rank, c1 + cluster - 1)
        head_target = head_target.masked_fill(~valid, IGNORE_INDEX)
        total = nn.functional.cross_entropy(self._head(h, w).float(), head_target,
                                            reduction="sum")
        for i in range(len(self.cutoffs)):
            # every cluster runs, with zero rows if none is needed, so every parameter
            # takes part in each step (DistributedDataParallel expects that)
            rows = ((cluster == i + 1) & valid).nonzero().squeeze(1)           # (N_i,)
            tail = self._tail(i, h.index_select(0, rows), w).float()           # (N_i, size_i)
            total = total + nn.functional.cross_entropy(
                tail, rank.index_select(0, rows) - self.bounds[i], reduction="sum")
        return total / valid.sum()
