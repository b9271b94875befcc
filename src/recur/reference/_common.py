"""Pieces shared by the NumPy reference cells: the sigmoid, the sequence cache, parameter
initialisation, and the input checks every public ``forward`` / ``backward`` runs once.

Nothing here is RNN math beyond the logistic function; the equations live in the cell
files (``elman.py``, ``gated.py``, ``gru.py``, ``lstm.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""torch.nn's names: ``weight_ih`` (G*H, D), ``weight_hh`` (G*H, H), biases (G*H,)."""


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^{-a}), written so that e^{|a|} is never formed (no overflow)."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass(frozen=True)
class SequenceCache:
    """What ``forward`` keeps for ``backward``: one step cache per time step.

    ``cell`` names the module whose ``backward`` reads this cache; ``h_last`` (B, H) is the
    final hidden state h_T and ``c_last`` (B, H) the final LSTM cell state (else None).
    """

    cell: str
    params: dict[str, np.ndarray]
    steps: list[Any]
    output_shape: tuple[int, ...]
    h_last: np.ndarray
    c_last: np.ndarray | None = None
    readout_steps: list[Any] | None = None


class Forward(NamedTuple):
    """``forward``'s result: ``outputs`` (B, T, H), or (B, T, O) with a readout, and the cache."""

    outputs: np.ndarray
    cache: SequenceCache


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def init_params(
    gates: int, input_size: int, hidden_size: int, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """torch.nn's initialisation: every entry uniform in (-1/√H, 1/√H), float64.

    Returns ``weight_ih`` (G*H, D), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,).
    """
    input_size = _positive_int(input_size, "input_size")
    hidden_size = _positive_int(hidden_size, "hidden_size")
    rng = np.random.default_rng() if rng is None else rng
    k = 1.0 / np.sqrt(hidden_size)
    rows = gates * hidden_size
    shapes = {
        "weight_ih": (rows, input_size),
        "weight_hh": (rows, hidden_size),
        "bias_ih": (rows,),
        "bias_hh": (rows,),
    }
    return {name: rng.uniform(-k, k, size=shape) for name, shape in shapes.items()}


def _as_float64(value: object, name: str) -> np.ndarray:
    try:
        return np.array(value, dtype=np.float64)  # a copy: the cache never aliases the caller
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a float array, got {type(value).__name__}") from err


def _expect_shape(
    array: np.ndarray, name: str, expected: tuple[int, ...], legend: str, note: str = ""
) -> None:
    if array.shape != expected:
        raise ValueError(f"{name} must have shape {legend} = {expected}{note}, got {array.shape}")


def check_params(
    params: object,
    *,
    gates: int,
    cell: str,
    optional: tuple[str, ...] = (),
) -> tuple[dict[str, np.ndarray], int, int]:
    """Check ``params`` against torch.nn's layout for a cell with ``gates`` gates.

    Returns a float64 copy of the dict and (D, H), read from ``weight_ih`` and ``weight_hh``.
    Keys in ``optional`` (the Elman readout ``V``, ``c``) are allowed and copied, not checked.
    """
    if not isinstance(params, Mapping):
        raise ValueError(
            f"params must be a dict of NumPy arrays with keys {', '.join(PARAM_NAMES)}, "
            f"got {type(params).__name__}"
        )
    allowed = PARAM_NAMES + optional
    missing = [name for name in PARAM_NAMES if name not in params]
    unknown = sorted(str(name) for name in params if name not in allowed)
    if missing or unknown:
        expected = ", ".join(PARAM_NAMES)
        if optional:
            expected += f" (optionally {', '.join(optional)})"
        problems = []
        if missing:
            problems.append(f"missing {missing}")
        if unknown:
            problems.append(f"unexpected {unknown}")
        raise ValueError(
            f"params for {cell} must have keys {expected}, "
            f"got keys {sorted(str(name) for name in params)} ({', '.join(problems)})"
        )
    out = {name: _as_float64(value, f"params[{name!r}]") for name, value in params.items()}

    w_hh = out["weight_hh"]
    if w_hh.ndim != 2 or w_hh.shape[1] == 0:
        raise ValueError(
            f"params['weight_hh'] must be a 2-D array of shape (G*H, H) with G={gates} "
            f"for {cell}, got shape {w_hh.shape}"
        )
    hidden = w_hh.shape[1]
    rows = gates * hidden
    note = f" for {cell} (G={gates} gates, H={hidden} from weight_hh's columns)"
    _expect_shape(w_hh, "params['weight_hh']", (rows, hidden), "(G*H, H)", note)
    w_ih = out["weight_ih"]
    if w_ih.ndim != 2 or w_ih.shape[0] != rows or w_ih.shape[1] == 0:
        raise ValueError(
            f"params['weight_ih'] must have shape (G*H, D) = ({rows}, D){note}, got {w_ih.shape}"
        )
    for name in ("bias_ih", "bias_hh"):
        _expect_shape(out[name], f"params[{name!r}]", (rows,), "(G*H,)", note)
    return out, w_ih.shape[1], hidden


def check_xs(xs: object, input_size: int) -> np.ndarray:
    """``xs`` must be a batch-first (B, T, D) array with at least one step and D features."""
    xs = _as_float64(xs, "xs")
    if xs.ndim != 3 or xs.shape[2] != input_size:
        raise ValueError(
            f"xs must be a batch-first array of shape (B, T, D) with D={input_size} "
            f"(weight_ih's columns), got shape {xs.shape}"
        )
    if xs.shape[0] == 0 or xs.shape[1] == 0:
        raise ValueError(f"xs must have B >= 1 and T >= 1 in (B, T, D), got shape {xs.shape}")
    return xs


def check_state(state: object, name: str, batch: int, hidden: int) -> np.ndarray:
    """An initial state (``h0``, ``c0``) is (B, H); None means zeros."""
    if state is None:
        return np.zeros((batch, hidden))
    state = _as_float64(state, name)
    _expect_shape(state, name, (batch, hidden), "(B, H)")
    return state


def check_grad(grad: object, name: str, shape: tuple[int, ...], legend: str) -> np.ndarray:
    """An incoming gradient (``d_outputs``, ``d_h_last``) has its variable's shape."""
    grad = _as_float64(grad, name)
    _expect_shape(grad, name, shape, legend)
    return grad


def check_cache(cache: object, cell: str) -> SequenceCache:
    """``backward`` must get the cache of its own cell's ``forward``."""
    if not isinstance(cache, SequenceCache) or cache.cell != cell:
        got = cache.cell if isinstance(cache, SequenceCache) else type(cache).__name__
        raise ValueError(f"cache must come from {cell}.forward, got {got}")
    return cache
