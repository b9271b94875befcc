"""NumPy reference implementations: each cell's forward pass and backpropagation through time,
written as the lecture derivation, in float64. The oracle for the math of ``recur.cells``.

One module per cell family, each with the same shape of API::

    outputs, cache = gru.forward(params, xs, h0, reset="after")   # xs (B, T, D) -> (B, T, H)
    grads = gru.backward(d_outputs, cache)       # keys of params, plus "xs" and "h0"

    step_forward(params, x, h_prev, ...) -> (h, step_cache)      one time step
    step_backward(d_h, step_cache) -> dict                       its share of the gradients

``params`` use torch.nn's names and gate order (``weight_ih`` (G*H, D), ``weight_hh``
(G*H, H), ``bias_ih``, ``bias_hh`` (G*H,)), so weights copy to and from torch.nn.RNN / GRU /
LSTM and recur's cells unchanged. Modules:

    elman     Elman (1990), f in {tanh, relu, sigmoid}, optional readout y_t = V h_t + c
    gated     one update gate: h_t = (1 - g_t) h_{t-1} + g_t tanh(...)
    gru       Cho et al. (2014), reset="before", and the cuDNN / torch form, reset="after"
    lstm      Hochreiter & Schmidhuber (1997) with the forget gate of Gers et al. (2000)
    clipping  clip_by_norm, clip_by_value (Pascanu et al. 2013)

BPTT follows Werbos (1990). Tests: ``pytest tests/reference -q`` checks every backward
against centred finite differences and torch autograd. ``docs/equations.md`` maps each
lecture equation to its line here and in ``recur.cells``.
"""

from recur.reference import clipping, elman, gated, gru, lstm
from recur.reference._common import Forward, SequenceCache
from recur.reference.clipping import Clipped, clip_by_norm, clip_by_value, global_norm

__all__ = [
    "Clipped",
    "Forward",
    "SequenceCache",
    "clip_by_norm",
    "clip_by_value",
    "clipping",
    "elman",
    "gated",
    "global_norm",
    "gru",
    "lstm",
]
