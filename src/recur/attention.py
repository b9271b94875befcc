"""Attention over a source sequence: additive (Bahdanau) and multiplicative (Luong).

Both score every source position ``s`` against a query ``q`` (the decoder state), turn
the scores into weights with a softmax over the *real* source positions, and return the
weighted sum of the source vectors (the context)::

    additive        score(q, m_s) = vᵀ tanh(W_q q + W_m m_s)      Bahdanau et al. 2015, §3.1
    dot             score(q, m_s) = qᵀ m_s                         Luong et al. 2015, §3.1
    general         score(q, m_s) = qᵀ W_a m_s                     Luong et al. 2015, §3.1
    a_s = softmax_s(score)   (padded positions: score = -inf, so a_s is exactly 0)
    context = Σ_s a_s m_s

The memory's projections (``W_m m_s``, ``W_a m_s``) do not depend on the query, so
``prepare(memory)`` computes them once per source batch and every decoder step reuses
them (``keys``). A query may be one step (B, Q) or a whole sequence (B, T, Q): the
second serves decoders that compute all their states before attending (Luong without
input feeding), in one batched matmul.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from recur.cells.base import check_positive_int

ATTENTIONS = ("additive", "dot", "general")


class AttentionOutput(NamedTuple):
    """context: (B, K) or (B, T, K); weights: (B, S) or (B, T, S), zero at padding."""

    context: Tensor
    weights: Tensor


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last axis (S) with ``mask`` (B, S) False positions at exactly 0.

    ``scores`` is (B, S) or (B, T, S). Every row must have at least one True position.
    """
    if mask is not None:
        if mask.dim() == scores.dim() - 1:
            mask = mask.unsqueeze(1)                                     # (B, 1, S)
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


class Attention(nn.Module):
    """Additive or multiplicative attention of a query over a memory.

    Args:
        kind: ``"additive"`` (Bahdanau), ``"dot"`` or ``"general"`` (Luong).
        query_size: Q, the decoder state size.
        memory_size: K, the size of each source vector (2H for a bidirectional encoder).
        attention_size: A, the hidden size of the additive scorer (additive only;
            default Q).

    ``dot`` needs Q == K.
    """

    def __init__(self, kind: str, query_size: int, memory_size: int,
                 attention_size: int | None = None) -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention kind must be one of {', '.join(ATTENTIONS)}, got {kind!r}")
        check_positive_int("query_size", query_size)
        check_positive_int("memory_size", memory_size)
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs query_size == memory_size, got "
                             f"{query_size} and {memory_size}; use 'general'")
        self.kind, self.query_size, self.memory_size = kind, query_size, memory_size
        if kind == "additive":
            attention_size = attention_size or query_size
            check_positive_int("attention_size", attention_size)
            self.memory_proj = nn.Linear(memory_size, attention_size, bias=False)   # W_m
            self.query_proj = nn.Linear(query_size, attention_size, bias=True)      # W_q
            self.v = nn.Linear(attention_size, 1, bias=False)                       # v
        elif kind == "general":
            self.memory_proj = nn.Linear(memory_size, query_size, bias=False)      # W_a

    def prepare(self, memory: Tensor) -> Tensor:
        """The query-independent keys of ``memory`` (B, S, K): (B, S, A) or (B, S, Q)."""
        if self.kind == "dot":
            return memory
        return self.memory_proj(memory)

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor | None = None,
                keys: Tensor | None = None) -> AttentionOutput:
        """Attend from ``query`` over ``memory``.

        Args:
            query: (B, Q) for one step, or (B, T, Q) for T steps at once.
            memory: (B, S, K) source vectors.
            mask: (B, S) bool, True at real positions (None: all real).
            keys: ``prepare(memory)``, to reuse across decoder steps (computed if None).

        Returns:
            ``AttentionOutput(context (B, K) | (B, T, K), weights (B, S) | (B, T, S))``.
        """
        if keys is None:
            keys = self.prepare(memory)
        one_step = query.dim() == 2
        q = query.unsqueeze(1) if one_step else query                             # (B, T, Q)
        if self.kind == "additive":
            hidden = torch.tanh(self.query_proj(q).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
            scores = self.v(hidden).squeeze(-1)                                   # (B, T, S)
        else:
            scores = torch.bmm(q, keys.transpose(1, 2))                           # (B, T, S)
        weights = masked_softmax(scores, mask)                                    # (B, T, S)
        context = torch.bmm(weights, memory)                                      # (B, T, K)
        if one_step:
            return AttentionOutput(context.squeeze(1), weights.squeeze(1))
        return AttentionOutput(context, weights)
