"""LSTM in NumPy: forward pass and backpropagation through time through h and the cell state.

Hochreiter & Schmidhuber (1997), "Long short-term memory", Neural Computation 9(8), with the
forget gate of Gers, Schmidhuber & Cummins (2000), "Learning to forget", Neural Computation
12(10) — the torch.nn.LSTM variant: no peepholes, full BPTT (Werbos 1990, Proc. IEEE 78(10)).

torch's layout: the rows of ``weight_ih`` / ``weight_hh`` / ``bias_ih`` / ``bias_hh`` are
[i | f | g | o]. Forward, for t = 1..T, with net^k_t = W_ik x_t + b_ik + W_hk h_{t-1} + b_hk::

    i_t = σ(net^i_t)     input gate            f_t = σ(net^f_t)     forget gate
    g_t = tanh(net^g_t)  candidate             o_t = σ(net^o_t)     output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

Backward, for t = T..1, given ∂L/∂h_t (loss at t + W_hᵀ δ_{t+1}) and ∂L/∂c_t from step t+1::

    δ^o_t   = ∂L/∂h_t ⊙ tanh(c_t) ⊙ o_t (1 - o_t)
    ∂L/∂c_t ← ∂L/∂c_t + ∂L/∂h_t ⊙ o_t ⊙ (1 - tanh²(c_t))
    δ^i_t   = ∂L/∂c_t ⊙ g_t ⊙ i_t (1 - i_t)       δ^f_t = ∂L/∂c_t ⊙ c_{t-1} ⊙ f_t (1 - f_t)
    δ^g_t   = ∂L/∂c_t ⊙ i_t ⊙ (1 - g_t²)
    ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f_t                  the constant error carousel: no W, no f′
    ∂L/∂h_{t-1} = W_hᵀ δ_t,  δ_t = [δ^i | δ^f | δ^g | δ^o]
    ∂L/∂W_i = Σ_t δ_t x_tᵀ   ∂L/∂W_h = Σ_t δ_t h_{t-1}ᵀ   ∂L/∂b = Σ_t δ_t

Arrays are batch-first float64. Run the checks with ``pytest tests/reference -q``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from recur.reference._common import (
    PARAM_NAMES,
    Forward,
    SequenceCache,
    check_cache,
    check_grad,
    check_params,
    check_state,
    check_xs,
    sigmoid,
)
from recur.reference._common import init_params as _init_params

GATES = 4  # rows [i | f | g | o]


class StepCache(NamedTuple):
    x: np.ndarray  # (B, D)
    h_prev: np.ndarray  # (B, H)
    c_prev: np.ndarray  # (B, H)
    i: np.ndarray  # (B, H)
    f: np.ndarray  # (B, H)
    g: np.ndarray  # (B, H)
    o: np.ndarray  # (B, H)
    tanh_c: np.ndarray  # (B, H)
    weight_ih: np.ndarray  # (4H, D)
    weight_hh: np.ndarray  # (4H, H)


def init_params(
    input_size: int, hidden_size: int, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """torch.nn.LSTM's init: ``weight_ih`` (4H, D), ``weight_hh`` (4H, H), biases (4H,)."""
    return _init_params(GATES, input_size, hidden_size, rng)


def step_forward(
    params: dict[str, np.ndarray], x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], StepCache]:
    """One step. x (B, D), h_prev (B, H), c_prev (B, H) -> (h, c) each (B, H), cache."""
    H = h_prev.shape[1]
    net = (
        x @ params["weight_ih"].T
        + params["bias_ih"]
        + h_prev @ params["weight_hh"].T
        + params["bias_hh"]
    )  # (B, 4H)  rows [i | f | g | o]
    i = sigmoid(net[:, :H])  # (B, H)
    f = sigmoid(net[:, H : 2 * H])  # (B, H)
    g = np.tanh(net[:, 2 * H : 3 * H])  # (B, H)
    o = sigmoid(net[:, 3 * H :])  # (B, H)
    c = f * c_prev + i * g  # (B, H)
    tanh_c = np.tanh(c)  # (B, H)
    h = o * tanh_c  # (B, H)
    cache = StepCache(
        x, h_prev, c_prev, i, f, g, o, tanh_c, params["weight_ih"], params["weight_hh"]
    )
    return (h, c), cache


def step_backward(d_h: np.ndarray, d_c: np.ndarray, cache: StepCache) -> dict[str, np.ndarray]:
    """Backward through one step.

    Args:
        d_h: ∂L/∂h_t (B, H), the loss at t plus what step t+1 sent back through W_h.
        d_c: ∂L/∂c_t (B, H) from step t+1 through its forget gate (the carousel).

    Returns:
        This step's share of the weight gradients and the gradients ``x`` (B, D),
        ``h_prev`` (B, H) and ``c_prev`` (B, H).
    """
    i, f, g, o, tanh_c = cache.i, cache.f, cache.g, cache.o, cache.tanh_c
    d_o = d_h * tanh_c  # (B, H)  through h = o ⊙ tanh(c), o's side
    d_c = d_c + d_h * o * (1 - tanh_c**2)  # (B, H)  through tanh(c), plus the carry from t+1
    d_i = d_c * g  # (B, H)  through i ⊙ g
    d_g = d_c * i  # (B, H)  through i ⊙ g
    d_f = d_c * cache.c_prev  # (B, H)  through f ⊙ c_prev
    d_c_prev = d_c * f  # (B, H)  through f ⊙ c_prev: the carousel, no W, no f′
    delta = np.concatenate(
        [
            d_i * i * (1 - i),  # through σ
            d_f * f * (1 - f),  # through σ
            d_g * (1 - g**2),  # through tanh
            d_o * o * (1 - o),  # through σ
        ],
        axis=1,
    )  # (B, 4H)  ∂L/∂net, rows [i | f | g | o]
    d_b = delta.sum(axis=0)  # (4H,)  through + b_i + b_h
    return {
        "weight_ih": delta.T @ cache.x,  # (4H, D)  through W_i x_t: δ_t x_tᵀ
        "weight_hh": delta.T @ cache.h_prev,  # (4H, H)  through W_h h_{t-1}: δ_t h_{t-1}ᵀ
        "bias_ih": d_b,
        "bias_hh": d_b.copy(),
        "x": delta @ cache.weight_ih,  # (B, D)  through W_i: W_iᵀ δ_t
        "h_prev": delta @ cache.weight_hh,  # (B, H)  through W_h: W_hᵀ δ_t
        "c_prev": d_c_prev,  # (B, H)
    }


def forward(
    params: dict[str, np.ndarray],
    xs: np.ndarray,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> Forward:
    """Run the LSTM over a batch of sequences.

    Args:
        params: ``weight_ih`` (4H, D), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H,),
            rows in torch's order [i | f | g | o].
        xs: inputs, batch-first (B, T, D).
        h0, c0: initial hidden and cell state (B, H); None means zeros.

    Returns:
        ``(outputs, cache)``: outputs h_1..h_T (B, T, H); ``cache.h_last`` is h_T and
        ``cache.c_last`` is c_T, each (B, H).
    """
    params, input_size, hidden_size = check_params(params, gates=GATES, cell="lstm")
    xs = check_xs(xs, input_size)
    B, T, _ = xs.shape
    h = check_state(h0, "h0", B, hidden_size)
    c = check_state(c0, "c0", B, hidden_size)

    steps, outputs = [], []
    for t in range(T):
        (h, c), step = step_forward(params, xs[:, t], h, c)  # (B, H), (B, H)
        steps.append(step)
        outputs.append(h)
    out = np.stack(outputs, axis=1)  # (B, T, H)
    cache = SequenceCache("lstm", params, steps, out.shape, h_last=h, c_last=c)
    return Forward(out, cache)


def backward(
    d_outputs: np.ndarray,
    cache: SequenceCache,
    d_h_last: np.ndarray | None = None,
    d_c_last: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Backpropagation through time.

    Args:
        d_outputs: ∂L/∂h_1..∂L/∂h_T from the loss at each step, (B, T, H).
        cache: ``forward``'s cache.
        d_h_last, d_c_last: ∂L/∂h_T and ∂L/∂c_T (B, H) for a loss that also reads the final
            state (an encoder handing (h, c) to a decoder); None means 0.

    Returns:
        Gradients under the params' keys (summed over time and batch), plus ``xs`` (B, T, D),
        ``h0`` and ``c0`` (B, H).
    """
    cache = check_cache(cache, "lstm")
    d_outputs = check_grad(d_outputs, "d_outputs", cache.output_shape, "outputs' shape")
    B, T, H = cache.output_shape
    d_h_next = np.zeros((B, H))  # (B, H)  nothing flows back from after step T
    d_c_next = np.zeros((B, H))  # (B, H)
    if d_h_last is not None:
        d_h_next = check_grad(d_h_last, "d_h_last", (B, H), "(B, H)")
    if d_c_last is not None:
        d_c_next = check_grad(d_c_last, "d_c_last", (B, H), "(B, H)")

    grads = {name: np.zeros_like(value) for name, value in cache.params.items()}
    d_xs = np.zeros((B, T, cache.params["weight_ih"].shape[1]))  # (B, T, D)
    for t in reversed(range(T)):
        d_h = d_outputs[:, t] + d_h_next  # (B, H)  ∂L/∂h_t: the loss at t + W_hᵀ δ_{t+1}
        step = step_backward(d_h, d_c_next, cache.steps[t])
        for name in PARAM_NAMES:
            grads[name] += step[name]  # shared weights: sum every step's part
        d_xs[:, t] = step["x"]
        d_h_next = step["h_prev"]  # (B, H)  for step t-1
        d_c_next = step["c_prev"]  # (B, H)  for step t-1
    grads["xs"] = d_xs
    grads["h0"] = d_h_next  # (B, H)
    grads["c0"] = d_c_next  # (B, H)
    return grads
