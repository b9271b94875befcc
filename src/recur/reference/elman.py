"""Elman RNN in NumPy: forward pass and backpropagation through time, as derived in the lecture.

Elman (1990), "Finding structure in time", Cognitive Science 14(2); BPTT as in Werbos (1990),
"Backpropagation through time: what it does and how to do it", Proc. IEEE 78(10).

Forward, for t = 1..T (U = ``weight_ih``, W = ``weight_hh``, b = ``bias_ih`` + ``bias_hh``)::

    net_t = U x_t + W h_{t-1} + b          (B, H)
    h_t   = f(net_t)                       f in {tanh, relu, sigmoid}
    y_t   = V h_t + c                      optional readout, only when params has V and c

Backward, for t = T..1, with ∂ℓ/∂h_t the gradient arriving from the output at step t::

    ∂L/∂h_t = ∂ℓ/∂h_t + Wᵀ δ_{t+1}          (δ_{T+1} = 0, or the gradient of h_T if given)
    δ_t     = ∂L/∂h_t ⊙ f′(net_t)            so  Wᵀ δ_{t+1} = Wᵀ diag(f′(net_{t+1})) ∂L/∂h_{t+1}
    ∂L/∂U   = Σ_t δ_t x_tᵀ      ∂L/∂W = Σ_t δ_t h_{t-1}ᵀ      ∂L/∂b = Σ_t δ_t
    ∂L/∂V   = Σ_t ∂L/∂y_t h_tᵀ   ∂L/∂c = Σ_t ∂L/∂y_t           ∂ℓ/∂h_t = Vᵀ ∂L/∂y_t

Arrays are batch-first float64, one row per sequence, so U x_t is written ``x @ U.T`` and
Wᵀ δ is written ``delta @ W``. Run the gradient checks with
``pytest tests/reference -q``.
"""

from __future__ import annotations

from collections.abc import Callable
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

GATES = 1


def _tanh_prime(net: np.ndarray, h: np.ndarray) -> np.ndarray:
    return 1.0 - h**2  # tanh′(net) = 1 - tanh(net)²


def _relu_prime(net: np.ndarray, h: np.ndarray) -> np.ndarray:
    return (net > 0).astype(np.float64)  # relu′(net) = 1 where net > 0 (0 at the kink)


def _sigmoid_prime(net: np.ndarray, h: np.ndarray) -> np.ndarray:
    return h * (1.0 - h)  # σ′(net) = σ(net) (1 - σ(net))


ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[..., np.ndarray]]] = {
    "tanh": (np.tanh, _tanh_prime),
    "relu": (lambda net: np.maximum(net, 0.0), _relu_prime),
    "sigmoid": (sigmoid, _sigmoid_prime),
}
"""f and f′ for each activation; f′ takes (net, h = f(net)) and uses whichever is cheaper."""


class StepCache(NamedTuple):
    x: np.ndarray  # (B, D)  x_t
    h_prev: np.ndarray  # (B, H)  h_{t-1}
    net: np.ndarray  # (B, H)  net_t
    h: np.ndarray  # (B, H)  h_t
    U: np.ndarray  # (H, D)
    W: np.ndarray  # (H, H)
    activation: str


class ReadoutCache(NamedTuple):
    h: np.ndarray  # (B, H)  h_t
    V: np.ndarray  # (O, H)


def init_params(
    input_size: int,
    hidden_size: int,
    output_size: int | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """torch.nn.RNN's initialisation (uniform ±1/√H), plus V (O, H) and c (O,) if output_size."""
    params = _init_params(GATES, input_size, hidden_size, rng)
    if output_size is not None:
        rng = np.random.default_rng() if rng is None else rng
        k = 1.0 / np.sqrt(hidden_size)
        params["V"] = rng.uniform(-k, k, size=(output_size, hidden_size))
        params["c"] = rng.uniform(-k, k, size=(output_size,))
    return params


def step_forward(
    params: dict[str, np.ndarray], x: np.ndarray, h_prev: np.ndarray, activation: str = "tanh"
) -> tuple[np.ndarray, StepCache]:
    """One step h_t = f(U x_t + W h_{t-1} + b). x (B, D), h_prev (B, H) -> h (B, H), cache."""
    f, _ = ACTIVATIONS[activation]
    U, W = params["weight_ih"], params["weight_hh"]
    b = params["bias_ih"] + params["bias_hh"]  # (H,)  torch keeps two biases; they add up
    net = x @ U.T + h_prev @ W.T + b  # (B, H)
    h = f(net)  # (B, H)
    return h, StepCache(x, h_prev, net, h, U, W, activation)


def step_backward(d_h: np.ndarray, cache: StepCache) -> dict[str, np.ndarray]:
    """Backward through one step, given d_h = ∂L/∂h_t (B, H), the total gradient of h_t.

    Returns this step's share of the weight gradients (to be summed over t) and the
    gradients of its inputs: ``x`` (B, D) and ``h_prev`` (B, H), the delta sent to t-1.
    """
    _, f_prime = ACTIVATIONS[cache.activation]
    delta = d_h * f_prime(cache.net, cache.h)  # (B, H)  through f: δ_t = ∂L/∂h_t ⊙ f′(net_t)
    d_b = delta.sum(axis=0)  # (H,)  through + b: ∂L/∂b = δ_t, summed over the batch
    return {
        "weight_ih": delta.T @ cache.x,  # (H, D)  through U x_t: δ_t x_tᵀ
        "weight_hh": delta.T @ cache.h_prev,  # (H, H)  through W h_{t-1}: δ_t h_{t-1}ᵀ
        "bias_ih": d_b,  # b = bias_ih + bias_hh, so both get ∂L/∂b
        "bias_hh": d_b.copy(),
        "x": delta @ cache.U,  # (B, D)  through U: Uᵀ δ_t
        "h_prev": delta @ cache.W,  # (B, H)  through W: Wᵀ δ_t, the delta carried back in time
    }


def output_forward(params: dict[str, np.ndarray], h: np.ndarray) -> tuple[np.ndarray, ReadoutCache]:
    """The readout y_t = V h_t + c. h (B, H) -> y (B, O), cache."""
    V, c = params["V"], params["c"]
    y = h @ V.T + c  # (B, O)
    return y, ReadoutCache(h, V)


def output_backward(d_y: np.ndarray, cache: ReadoutCache) -> dict[str, np.ndarray]:
    """Backward through y_t = V h_t + c, given d_y = ∂L/∂y_t (B, O)."""
    return {
        "V": d_y.T @ cache.h,  # (O, H)  through V h_t: ∂L/∂y_t h_tᵀ
        "c": d_y.sum(axis=0),  # (O,)  through + c
        "h": d_y @ cache.V,  # (B, H)  through V: ∂ℓ/∂h_t = Vᵀ ∂L/∂y_t
    }


def forward(
    params: dict[str, np.ndarray],
    xs: np.ndarray,
    h0: np.ndarray | None = None,
    activation: str = "tanh",
) -> Forward:
    """Run the Elman RNN over a batch of sequences.

    Args:
        params: ``weight_ih`` (H, D), ``weight_hh`` (H, H), ``bias_ih`` (H,), ``bias_hh`` (H,),
            and optionally the readout ``V`` (O, H) with ``c`` (O,).
        xs: inputs, batch-first (B, T, D).
        h0: initial state (B, H); None means zeros.
        activation: f, one of "tanh", "relu", "sigmoid".

    Returns:
        ``(outputs, cache)``: outputs are y_1..y_T (B, T, O) when params has the readout,
        else h_1..h_T (B, T, H). ``cache.h_last`` is h_T (B, H).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    params, input_size, hidden_size = check_params(
        params, gates=GATES, cell="elman", optional=("V", "c")
    )
    readout = "V" in params or "c" in params
    if readout:
        if "V" not in params or "c" not in params:
            raise ValueError("params must have both V (O, H) and c (O,) for a readout, or neither")
        V, c = params["V"], params["c"]
        if V.ndim != 2 or V.shape[1] != hidden_size or c.shape != (V.shape[0],):
            raise ValueError(
                f"params['V'] must have shape (O, H) with H={hidden_size} and params['c'] "
                f"shape (O,), got V {V.shape} and c {c.shape}"
            )
    xs = check_xs(xs, input_size)
    B, T, _ = xs.shape
    h = check_state(h0, "h0", B, hidden_size)

    steps, readout_steps, outputs = [], [], []
    for t in range(T):
        h, step = step_forward(params, xs[:, t], h, activation)  # (B, H)
        steps.append(step)
        if readout:
            y, out_step = output_forward(params, h)  # (B, O)
            readout_steps.append(out_step)
            outputs.append(y)
        else:
            outputs.append(h)
    out = np.stack(outputs, axis=1)  # (B, T, H) or (B, T, O)
    cache = SequenceCache(
        cell="elman",
        params=params,
        steps=steps,
        output_shape=out.shape,
        h_last=h,
        readout_steps=readout_steps if readout else None,
    )
    return Forward(out, cache)


def backward(
    d_outputs: np.ndarray, cache: SequenceCache, d_h_last: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Backpropagation through time.

    Args:
        d_outputs: ∂L/∂outputs, the shape of ``forward``'s outputs, (B, T, H) or (B, T, O).
        cache: ``forward``'s cache.
        d_h_last: ∂L/∂h_T (B, H) for a loss that also reads the final state; None means 0.

    Returns:
        Gradients under the params' keys (summed over time and batch), plus ``xs`` (B, T, D)
        and ``h0`` (B, H).
    """
    cache = check_cache(cache, "elman")
    d_outputs = check_grad(d_outputs, "d_outputs", cache.output_shape, "outputs' shape")
    B, T = cache.output_shape[:2]
    hidden_size = cache.h_last.shape[1]
    d_h_next = np.zeros((B, hidden_size))  # (B, H)  Wᵀ δ_{T+1} = 0: nothing after step T
    if d_h_last is not None:
        d_h_next = check_grad(d_h_last, "d_h_last", (B, hidden_size), "(B, H)")

    grads = {name: np.zeros_like(value) for name, value in cache.params.items()}
    d_xs = np.zeros((B, T, cache.params["weight_ih"].shape[1]))  # (B, T, D)
    for t in reversed(range(T)):
        if cache.readout_steps is not None:
            out_grads = output_backward(d_outputs[:, t], cache.readout_steps[t])
            grads["V"] += out_grads["V"]  # ∂L/∂V = Σ_t ∂L/∂y_t h_tᵀ
            grads["c"] += out_grads["c"]
            d_h_local = out_grads["h"]  # (B, H)  ∂ℓ/∂h_t through the readout
        else:
            d_h_local = d_outputs[:, t]  # (B, H)  the outputs are h_t themselves
        d_h = d_h_local + d_h_next  # (B, H)  ∂L/∂h_t = ∂ℓ/∂h_t + Wᵀ δ_{t+1}
        step = step_backward(d_h, cache.steps[t])
        for name in PARAM_NAMES:
            grads[name] += step[name]  # the weights are shared over time: sum every step's part
        d_xs[:, t] = step["x"]
        d_h_next = step["h_prev"]  # (B, H)  Wᵀ δ_t, for step t-1
    grads["xs"] = d_xs
    grads["h0"] = d_h_next  # (B, H)  Wᵀ δ_1 = ∂L/∂h_0
    return grads
