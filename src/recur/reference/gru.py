"""GRU in NumPy, both forms: forward pass and backpropagation through time.

Cho et al. (2014), "Learning phrase representations using RNN encoder-decoder for
statistical machine translation", EMNLP, Sect. 2.3; BPTT as in Werbos (1990), Proc. IEEE 78(10).

torch's layout: the rows of ``weight_ih`` / ``weight_hh`` / ``bias_ih`` / ``bias_hh`` are
[r | z | n], and W_ir x means ``x @ weight_ih[:H].T``. Forward, for t = 1..T::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)                 reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)                 update gate
    reset="after"  (cuDNN / torch.nn.GRU, the default):
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
    reset="before" (Cho et al. 2014, eq. 8):
        n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Backward, for t = T..1, given ∂L/∂h_t (loss at t plus what step t+1 sends back)::

    δ^n_t = ∂L/∂h_t ⊙ (1 - z_t) ⊙ (1 - n_t²)
    δ^z_t = ∂L/∂h_t ⊙ (h_{t-1} - n_t) ⊙ z_t (1 - z_t)
    δ^r_t = ∂L/∂r_t ⊙ r_t (1 - r_t), with ∂L/∂r_t = δ^n_t ⊙ (W_hn h_{t-1} + b_hn)   (after)
                                                  = (W_hnᵀ δ^n_t) ⊙ h_{t-1}          (before)
    ∂L/∂h_{t-1} = ∂L/∂h_t ⊙ z_t + W_hrᵀ δ^r_t + W_hzᵀ δ^z_t + W_hnᵀ (δ^n_t ⊙ r_t)   (after)
                = ∂L/∂h_t ⊙ z_t + W_hrᵀ δ^r_t + W_hzᵀ δ^z_t + (W_hnᵀ δ^n_t) ⊙ r_t (before)
    weight gradients: per-step outer products of the deltas with x_t, h_{t-1} (or r_t ⊙ h_{t-1}
    for W_hn before), summed over t.

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

GATES = 3  # rows [r | z | n]
RESETS = ("after", "before")


class StepCache(NamedTuple):
    x: np.ndarray  # (B, D)
    h_prev: np.ndarray  # (B, H)
    r: np.ndarray  # (B, H)
    z: np.ndarray  # (B, H)
    n: np.ndarray  # (B, H)
    hn: np.ndarray  # (B, H)  after: W_hn h_{t-1} + b_hn;  before: r_t ⊙ h_{t-1}
    weight_ih: np.ndarray  # (3H, D)
    weight_hh: np.ndarray  # (3H, H)
    reset: str


def init_params(
    input_size: int, hidden_size: int, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """torch.nn.GRU's initialisation: ``weight_ih`` (3H, D), ``weight_hh`` (3H, H), biases (3H,)."""
    return _init_params(GATES, input_size, hidden_size, rng)


def step_forward(
    params: dict[str, np.ndarray], x: np.ndarray, h_prev: np.ndarray, reset: str = "after"
) -> tuple[np.ndarray, StepCache]:
    """One step. x (B, D), h_prev (B, H) -> h (B, H), cache."""
    H = h_prev.shape[1]
    W_i, W_h = params["weight_ih"], params["weight_hh"]
    b_i, b_h = params["bias_ih"], params["bias_hh"]
    xi = x @ W_i.T + b_i  # (B, 3H)  rows [r | z | n]
    hrz = h_prev @ W_h[: 2 * H].T + b_h[: 2 * H]  # (B, 2H)  rows [r | z]
    r = sigmoid(xi[:, :H] + hrz[:, :H])  # (B, H)
    z = sigmoid(xi[:, H : 2 * H] + hrz[:, H:])  # (B, H)
    if reset == "after":
        hn = h_prev @ W_h[2 * H :].T + b_h[2 * H :]  # (B, H)  W_hn h_{t-1} + b_hn
        n = np.tanh(xi[:, 2 * H :] + r * hn)  # (B, H)
    else:
        hn = r * h_prev  # (B, H)  the reset state r ⊙ h_{t-1}
        n = np.tanh(xi[:, 2 * H :] + hn @ W_h[2 * H :].T + b_h[2 * H :])  # (B, H)
    h = (1 - z) * n + z * h_prev  # (B, H)
    return h, StepCache(x, h_prev, r, z, n, hn, W_i, W_h, reset)


def step_backward(d_h: np.ndarray, cache: StepCache) -> dict[str, np.ndarray]:
    """Backward through one step, given d_h = ∂L/∂h_t (B, H).

    Returns this step's share of the weight gradients and the gradients ``x`` (B, D) and
    ``h_prev`` (B, H).
    """
    x, h_prev, r, z, n, hn = cache.x, cache.h_prev, cache.r, cache.z, cache.n, cache.hn
    H = h_prev.shape[1]
    W_hrz, W_hn = cache.weight_hh[: 2 * H], cache.weight_hh[2 * H :]
    d_n = d_h * (1 - z)  # (B, H)  through (1 - z) ⊙ n
    d_z = d_h * (h_prev - n)  # (B, H)  through z ⊙ (h_prev - n)
    d_h_prev = d_h * z  # (B, H)  through z ⊙ h_prev: the direct path, no W, no f′
    delta_n = d_n * (1 - n**2)  # (B, H)  through tanh
    if cache.reset == "after":
        d_r = delta_n * hn  # (B, H)  through r ⊙ (W_hn h + b_hn)
        d_hn = delta_n * r  # (B, H)  ∂L/∂(W_hn h + b_hn), through r ⊙
        d_W_hn = d_hn.T @ h_prev  # (H, H)  through W_hn h_{t-1}
        d_h_prev = d_h_prev + d_hn @ W_hn  # (B, H)  through W_hn: W_hnᵀ (δ^n ⊙ r)
    else:
        d_rh = delta_n @ W_hn  # (B, H)  through W_hn (r ⊙ h): W_hnᵀ δ^n
        d_r = d_rh * h_prev  # (B, H)  through r ⊙ h_prev
        d_hn = delta_n  # b_hn sits outside the reset
        d_W_hn = delta_n.T @ hn  # (H, H)  through W_hn (r ⊙ h_{t-1}): δ^n (r ⊙ h)ᵀ
        d_h_prev = d_h_prev + d_rh * r  # (B, H)  through r ⊙ h_prev
    delta_r = d_r * r * (1 - r)  # (B, H)  through σ
    delta_z = d_z * z * (1 - z)  # (B, H)  through σ
    delta_rz = np.concatenate([delta_r, delta_z], axis=1)  # (B, 2H)
    delta_i = np.concatenate([delta_rz, delta_n], axis=1)  # (B, 3H)  ∂L/∂(W_i x + b_i)
    return {
        "weight_ih": delta_i.T @ x,  # (3H, D)  through W_i x_t: δ x_tᵀ
        "weight_hh": np.concatenate([delta_rz.T @ h_prev, d_W_hn]),  # (3H, H)  through W_h
        "bias_ih": delta_i.sum(axis=0),  # (3H,)  through + b_i
        "bias_hh": np.concatenate([delta_rz.sum(axis=0), d_hn.sum(axis=0)]),  # through + b_h
        "x": delta_i @ cache.weight_ih,  # (B, D)  through W_i: W_iᵀ δ
        "h_prev": d_h_prev + delta_rz @ W_hrz,  # (B, H)  through W_hr, W_hz: their ᵀ δ
    }


def forward(
    params: dict[str, np.ndarray],
    xs: np.ndarray,
    h0: np.ndarray | None = None,
    reset: str = "after",
) -> Forward:
    """Run the GRU over a batch of sequences.

    Args:
        params: ``weight_ih`` (3H, D), ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,),
            rows in torch's order [r | z | n].
        xs: inputs, batch-first (B, T, D).
        h0: initial state (B, H); None means zeros.
        reset: "after" (torch.nn.GRU / cuDNN: r scales W_hn h + b_hn) or "before"
            (Cho et al. 2014: W_hn multiplies r ⊙ h). Same parameters, different functions.

    Returns:
        ``(outputs, cache)``: outputs h_1..h_T (B, T, H); ``cache.h_last`` is h_T (B, H).
    """
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    params, input_size, hidden_size = check_params(params, gates=GATES, cell="gru")
    xs = check_xs(xs, input_size)
    B, T, _ = xs.shape
    h = check_state(h0, "h0", B, hidden_size)

    steps, outputs = [], []
    for t in range(T):
        h, step = step_forward(params, xs[:, t], h, reset)  # (B, H)
        steps.append(step)
        outputs.append(h)
    out = np.stack(outputs, axis=1)  # (B, T, H)
    cache = SequenceCache("gru", params, steps, out.shape, h_last=h)
    return Forward(out, cache)


def backward(
    d_outputs: np.ndarray, cache: SequenceCache, d_h_last: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Backpropagation through time.

    Args:
        d_outputs: ∂L/∂h_1..∂L/∂h_T from the loss at each step, (B, T, H).
        cache: ``forward``'s cache (it remembers the reset form).
        d_h_last: ∂L/∂h_T (B, H) for a loss that also reads the final state; None means 0.

    Returns:
        Gradients under the params' keys (summed over time and batch), plus ``xs`` (B, T, D)
        and ``h0`` (B, H).
    """
    cache = check_cache(cache, "gru")
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
