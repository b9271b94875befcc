"""Sequence pooling for many-to-one heads: (B, T, F) outputs + lengths -> (B, F).

``last`` uses the layer's final state (for a bidirectional layer: the forward direction
after the last real token and the reverse direction after the first), ``mean`` and ``max``
ignore padded positions, ``attention`` is a learned additive attention over time
(Bahdanau et al. 2015's scoring, v·tanh(W o_t), used as pooling by Yang et al. 2016).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

POOLINGS = ("last", "mean", "max", "attention")


def time_mask(lengths: Tensor, T: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True at real positions."""
    return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class AttentionPooling(nn.Module):
    """score_t = vᵀ tanh(W o_t); α = softmax over real positions; pooled = Σ α_t o_t."""

    def __init__(self, features: int, attention_size: int = 64) -> None:
        super().__init__()
        self.proj = nn.Linear(features, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, outputs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """outputs (B, T, F), mask (B, T) -> pooled (B, F), weights (B, T)."""
        scores = self.v(torch.tanh(self.proj(outputs))).squeeze(-1)      # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)                          # (B, T)
        return torch.einsum("bt,btf->bf", weights, outputs), weights     # (B, F)


def pool(kind: str, outputs: Tensor, final_h: Tensor, lengths: Tensor,
         attention: AttentionPooling | None = None) -> Tensor:
    """Pool ``outputs`` (B, T, F) to (B, F).

    ``final_h`` is the top layer's final hidden state per direction, (dirs, B, H).
    """
    mask = time_mask(lengths, outputs.shape[1])                          # (B, T)
    if kind == "last":
        return torch.cat(final_h.unbind(0), dim=-1)                     # (B, dirs·H)
    if kind == "mean":
        total = (outputs * mask.unsqueeze(-1)).sum(1)                    # (B, F)
        return total / lengths.unsqueeze(1).to(outputs.dtype)
    if kind == "max":
        return outputs.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
    assert attention is not None
    return attention(outputs, mask)[0]
