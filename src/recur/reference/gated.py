"""Simple gated RNN in NumPy: one update gate mixing the old state with a tanh candidate.

The lecture's bridge from the Elman RNN (Elman 1990) to the GRU: the GRU of Cho et al.
(2014, Sect. 2.3) with its reset gate held open (r_t = 1) and g_t playing 1 - z_t. Trained by
backpropagation through time (Werbos 1990, Proc. IEEE 78(10)).

Forward, for t = 1..T, with torch's layout: the rows of ``weight_ih`` / ``weight_hh`` /
``bias_ih`` / ``bias_hh`` are [g | n], so W_g·[h_{t-1}, x_t] + b_g is
x_t W_ig + b_ig + h_{t-1} W_hg + b_hg::

    g_t = σ(W_g·[h_{t-1}, x_t] + b_g)         update gate          (B, H)
    n_t = tanh(W_n·[h_{t-1}, x_t] + b_n)      candidate state      (B, H)
    h_t = (1 - g_t) ⊙ h_{t-1} + g_t ⊙ n_t

Backward, for t = T..1, with ∂L/∂h_t = ∂ℓ/∂h_t + (what step t+1 sends back)::

    ∂L/∂g_t = ∂L/∂h_t ⊙ (n_t - h_{t-1})     δ^g_t = ∂L/∂g_t ⊙ g_t (1 - g_t)
    ∂L/∂n_t = ∂L/∂h_t ⊙ g_t                  δ^n_t = ∂L/∂n_t ⊙ (1 - n_t²)
    ∂L/∂h_{t-1} = ∂L/∂h_t ⊙ (1 - g_t) + W_hgᵀ δ^g_t + W_hnᵀ δ^n_t
    weight gradients: Σ_t δ_t x_tᵀ and Σ_t δ_t h_{t-1}ᵀ with δ_t = [δ^g_t | δ^n_t]

The first term of ∂L/∂h_{t-1} passes no weight matrix and no squashing derivative: when
g_t is near 0 the gradient flows back unchanged, which is the point of the gate.
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

GATES = 2  # rows [g | n]


class StepCache(NamedTuple):
    x: np.ndarray  # (B, D)
    h_prev: np.ndarray  # (B, H)
    g: np.ndarray  # (B, H)
    n: np.ndarray  # (B, H)
    weight_ih: np.ndarray  # (2H, D)
    weight_hh: np.ndarray  # (2H, H)


def init_params(
    input_size: int, hidden_size: int, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """Uniform ±1/√H, like torch.nn: ``weight_ih`` (2H, D), ``weight_hh`` (2H, H), biases (2H,)."""
    return _init_params(GATES, input_size, hidden_size, rng)


def step_forward(
    params: dict[str, np.ndarray], x: np.ndarray, h_prev: np.ndarray
) -> tuple[np.ndarray, StepCache]:
    """One step. x (B, D), h_prev (B, H) -> h (B, H), cache."""
    H = h_prev.shape[1]
    net = (
        x @ params["weight_ih"].T
        + params["bias_ih"]
        + h_prev @ params["weight_hh"].T
        + params["bias_hh"]
    )  # (B, 2H)  rows [g | n]
    g = sigmoid(net[:, :H])  # (B, H)
    n = np.tanh(net[:, H:])  # (B, H)
    h = (1 - g) * h_prev + g * n  # (B, H)
    return h, StepCache(x, h_prev, g, n, params["weight_ih"], params["weight_hh"])


def step_backward(d_h: np.ndarray, cache: StepCache) -> dict[str, np.ndarray]:
    """Backward through one step, given d_h = ∂L/∂h_t (B, H).

    Returns this step's share of the weight gradients and the gradients ``x`` (B, D) and
    ``h_prev`` (B, H).
    """
    x, h_prev, g, n = cache.x, cache.h_prev, cache.g, cache.n
    d_g = d_h * (n - h_prev)  # (B, H)  through h = h_prev + g (n - h_prev)
    d_n = d_h * g  # (B, H)  through g ⊙ n
    d_h_direct = d_h * (1 - g)  # (B, H)  through (1 - g) ⊙ h_prev: no W, no f′
    delta = np.concatenate(
        [
            d_g * g * (1 - g),  # through σ: δ^g
            d_n * (1 - n**2),  # through tanh: δ^n
        ],
        axis=1,
    )  # (B, 2H)  ∂L/∂net, rows [g | n]
    d_b = delta.sum(axis=0)  # (2H,)  through + b_i + b_h
    return {
        "weight_ih": delta.T @ x,  # (2H, D)  through W_i x_t: δ_t x_tᵀ
        "weight_hh": delta.T @ h_prev,  # (2H, H)  through W_h h_{t-1}: δ_t h_{t-1}ᵀ
        "bias_ih": d_b,
        "bias_hh": d_b.copy(),
        "x": delta @ cache.weight_ih,  # (B, D)  through W_i: W_iᵀ δ_t
        "h_prev": d_h_direct + delta @ cache.weight_hh,  # (B, H)  gate path + W_hᵀ δ_t
    }


def forward(params: dict[str, np.ndarray], xs: np.ndarray, h0: np.ndarray | None = None) -> Forward:
    """Run the gated RNN over a batch of sequences.

    Args:
        params: ``weight_ih`` (2H, D), ``weight_hh`` (2H, H), ``bias_ih``, ``bias_hh`` (2H,),
            rows in the order [g | n].
        xs: inputs, batch-first (B, T, D).
        h0: initial state (B, H); None means zeros.

    Returns:
        ``(outputs, cache)``: outputs h_1..h_T (B, T, H); ``cache.h_last`` is h_T (B, H).
    """
    params, input_size, hidden_size = check_params(params, gates=GATES, cell="gated")
    xs = check_xs(xs, input_size)
    B, T, _ = xs.shape
    h = check_state(h0, "h0", B, hidden_size)

    steps, outputs = [], []
    for t in range(T):
        h, step = step_forward(params, xs[:, t], h)  # (B, H)
        steps.append(step)
        outputs.append(h)
    out = np.stack(outputs, axis=1)  # (B, T, H)
    cache = SequenceCache("gated", params, steps, out.shape, h_last=h)
    return Forward(out, cache)


def backward(
    d_outputs: np.ndarray, cache: SequenceCache, d_h_last: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Backpropagation through time.

    Args:
        d_outputs: ∂L/∂h_1..∂L/∂h_T from the loss at each step, (B, T, H).
        cache: ``forward``'s cache.
        d_h_last: ∂L/∂h_T (B, H) for a loss that also reads the final state; None means 0.

    Returns:
        Gradients under the params' keys (summed over time and batch), plus ``xs`` (B, T, D)
        and ``h0`` (B, H).
    """
    cache = check_cache(cache, "gated")
    d_outputs = check_grad(d_outputs, "d_outputs", cache.output_shape, "outputs' shape")
    B, T, H = cache.output_shape
    d_h_next = np.zeros((B, H))  # (B, H)  nothing flows back from after step T
    if d_h_last is not None:
        d_h_next = check_grad(d_h_last, "d_h_last", (B, H), "(B, H)")

    grads = {name: np.zeros_like(value) for name, value in cache.params.items()}
    d_xs = np.zeros((B, T, cache.params["weight_ih"].shape[1]))  # (B, T, D)
    for t in reversed(range(T)):
        d_h = d_outputs[:, t] + d_h_next  # (B, H)  ∂L/∂h_t: the loss at t + the path from t+1
        step = step_backward(d_h, cache.steps[t])
        for name in PARAM_NAMES:
            grads[name] += step[name]  # shared weights: sum every step's part
        d_xs[:, t] = step["x"]
        d_h_next = step["h_prev"]  # (B, H)  for step t-1
    grads["xs"] = d_xs
    grads["h0"] = d_h_next  # (B, H)
    return grads
