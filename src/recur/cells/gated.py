"""The simple gated RNN of the lecture notes: one update gate, no reset gate.

    g_t = σ(W_g·[h_{t-1}, x_t] + b_g)
    n_t = tanh(W·[h_{t-1}, x_t] + b)
    h_t = (1 − g_t) ⊙ h_{t-1} + g_t ⊙ n_t

The gate interpolates between keeping the old state (g = 0) and writing the candidate
(g = 1): the leaky-integrator idea that the GRU (Cho et al. 2014) refines with a reset
gate. W·[h, x] is stored split the torch way: rows ``[g; n]`` of ``weight_ih`` (2H, D)
multiply x_t and rows of ``weight_hh`` (2H, H) multiply h_{t-1}.
"""

from __future__ import annotations

import torch
from torch import Tensor

from recur.cells.base import CellBase, State


class GatedRNN(CellBase):
    """Single-gate RNN cell: ``h_t = (1 − g_t) ⊙ h_{t-1} + g_t ⊙ tanh(W·[h_{t-1}, x_t] + b)``.

    Args: as ``CellBase`` (input_size, hidden_size, bias, single_bias, init).
    """

    num_gates = 2

    def recur_with_gates(self, xw: Tensor, state: State) -> tuple[State, dict[str, Tensor]]:
        (h_prev,) = state                                  # (B, H)
        xg, xn = xw.chunk(2, dim=-1)                       # (B, H) each
        hg, hn = self.hidden_transform(h_prev).chunk(2, dim=-1)
        g = torch.sigmoid(xg + hg)                         # update gate
        n = torch.tanh(xn + hn)                            # candidate state
        h = (1 - g) * h_prev + g * n
        return (h,), {"g": g, "n": n}
