"""Long short-term memory.

Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", Neural Computation 9(8), with
the forget gate of Gers, Schmidhuber & Cummins (2000), "Learning to Forget" — the form
torch.nn.LSTM, cuDNN and Keras compute (no peepholes).

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)     input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)     forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)  candidate
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)     output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                    cell state
    h_t = o_t ⊙ tanh(c_t)

Gate order in ``weight_ih`` (4H, D) and ``weight_hh`` (4H, H) is torch's: i, f, g, o.
``forget_bias`` sets the forget gate's total bias (Jozefowicz et al. 2015 recommend 1.0;
Keras' ``unit_forget_bias=True``), split so that ``bias_ih + bias_hh`` equals it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from recur.cells.base import CellBase, State


class LSTM(CellBase):
    """LSTM cell with state ``(h, c)``.

    Args:
        input_size: D.
        hidden_size: H.
        forget_bias: if given, the forget gate's bias starts at this value.
        **options: ``bias``, ``single_bias``, ``init`` (see ``CellBase``).
    """

    num_gates = 4
    state_names = ("h", "c")

    def __init__(
        self, input_size: int, hidden_size: int, *, forget_bias: float | None = None, **options
    ) -> None:
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, **options)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is None or self.bias_ih is None:
            return
        H = self.hidden_size
        with torch.no_grad():
            self.bias_ih[H : 2 * H] = float(self.forget_bias)
            if self.bias_hh is not None:
                self.bias_hh[H : 2 * H] = 0.0

    def recur_with_gates(self, xw: Tensor, state: State) -> tuple[State, dict[str, Tensor]]:
        h_prev, c_prev = state                                            # (B, H) each
        xi, xf, xg, xo = xw.chunk(4, dim=-1)                              # (B, H) each
        hi, hf, hg, ho = self.hidden_transform(h_prev).chunk(4, dim=-1)   # (B, H) each
        i = torch.sigmoid(xi + hi)                                        # input gate
        f = torch.sigmoid(xf + hf)                                        # forget gate
        g = torch.tanh(xg + hg)                                           # candidate
        o = torch.sigmoid(xo + ho)                                        # output gate
        c = f * c_prev + i * g                                            # cell state
        h = o * torch.tanh(c)
        return (h, c), {"i": i, "f": f, "g": g, "o": o}

    def extra_repr(self) -> str:
        extra = super().extra_repr()
        if self.forget_bias is not None:
            extra += f", forget_bias={self.forget_bias}"
        return extra
