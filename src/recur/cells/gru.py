"""Gated recurrent unit, in both published forms.

Cho et al. (2014), "Learning Phrase Representations using RNN Encoder-Decoder for
Statistical Machine Translation", section 2.3, eqs. 5-8 — ``reset="before"``: the reset
gate scales h_{t-1} *before* the recurrent matmul.

cuDNN / torch.nn.GRU / Keras (``reset_after=True``) — ``reset="after"``: the reset gate
scales the recurrent matmul's result (W_hn h_{t-1} + b_hn). It is the default here because
it is what torch, cuDNN and Keras 2+/3 use, so their weights load unchanged and the layer can
run the fused kernel; the two forms train equally well in practice (Chung et al. 2014,
Jozefowicz et al. 2015 report no consistent difference).

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)              reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)              update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  reset="after"
    n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)  reset="before"
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Gate order in ``weight_ih`` (3H, D) and ``weight_hh`` (3H, H) is torch's: r, z, n.
Note z is the *keep* gate here (torch's and Cho's convention): z = 1 copies h_{t-1}.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recur.cells.base import CellBase, State, check_choice

RESETS = ("after", "before")


class GRU(CellBase):
    """GRU cell.

    Args:
        input_size: D.
        hidden_size: H.
        reset: ``"after"`` (cuDNN/torch, default) or ``"before"`` (Cho et al. 2014).
        **options: ``bias``, ``single_bias``, ``init`` (see ``CellBase``).
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int, *, reset: str = "after", **options) -> None:
        self.reset = check_choice("reset", reset, RESETS)
        super().__init__(input_size, hidden_size, **options)

    def recur_with_gates(self, xw: Tensor, state: State) -> tuple[State, dict[str, Tensor]]:
        (h_prev,) = state                                           # (B, H)
        xr, xz, xn = xw.chunk(3, dim=-1)                            # (B, H) each
        if self.reset == "after":
            hr, hz, hn = self.hidden_transform(h_prev).chunk(3, dim=-1)
            r = torch.sigmoid(xr + hr)                              # reset gate
            z = torch.sigmoid(xz + hz)                              # update gate
            n = torch.tanh(xn + r * hn)                             # candidate
        else:
            W_hrz, W_hn = self.weight_hh.split(2 * self.hidden_size)  # (2H, H), (H, H)
            b_hrz, b_hn = (None, None) if self.bias_hh is None else self.bias_hh.split(
                2 * self.hidden_size)
            hr, hz = nn.functional.linear(h_prev, W_hrz, b_hrz).chunk(2, dim=-1)
            r = torch.sigmoid(xr + hr)                              # reset gate
            z = torch.sigmoid(xz + hz)                              # update gate
            n = torch.tanh(xn + nn.functional.linear(r * h_prev, W_hn, b_hn))  # candidate
        h = (1 - z) * n + z * h_prev
        return (h,), {"r": r, "z": z, "n": n}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset={self.reset!r}"
