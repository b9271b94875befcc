"""Gradient clipping, the step between BPTT and the parameter update.

By global norm (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
neural networks", ICML, Algorithm 1), over all gradients together as one vector g::

    ‖g‖ = sqrt(Σ_k Σ_entries g_k²)
    g ← g · max_norm / ‖g‖    if ‖g‖ > max_norm, else g unchanged

This keeps the direction of the update and bounds its length, so one exploding step
(‖Wᵀ diag(f′)‖ > 1 over many time steps) cannot throw the weights far away.
torch.nn.utils.clip_grad_norm_ computes the same with max_norm / (‖g‖ + 1e-6).

By value, each entry on its own (changes the direction; torch.nn.utils.clip_grad_value_)::

    g ← min(max(g, -limit), limit)

Pass the parameter gradients only, e.g. ``{k: grads[k] for k in params}``: the ``xs`` and
``h0`` entries that ``backward`` also returns are not parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np


class Clipped(NamedTuple):
    """New gradient dict (the input is not modified) and the global norm before clipping."""

    grads: dict[str, np.ndarray]
    norm: float


def _check_grads(grads: object) -> dict[str, np.ndarray]:
    if not isinstance(grads, Mapping):
        raise ValueError(f"grads must be a dict of NumPy arrays, got {type(grads).__name__}")
    return {name: np.asarray(value, dtype=np.float64) for name, value in grads.items()}


def _check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """‖g‖: the L2 norm of all gradients flattened into one vector."""
    grads = _check_grads(grads)
    return float(np.sqrt(sum(np.sum(g**2) for g in grads.values())))


def clip_by_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> Clipped:
    """Scale all gradients by max_norm / ‖g‖ when ‖g‖ > max_norm; otherwise copy them.

    Raises ValueError when the norm is inf or nan: scaling cannot repair such gradients.
    """
    max_norm = _check_positive(max_norm, "max_norm")
    grads = _check_grads(grads)
    norm = global_norm(grads)
    if not np.isfinite(norm):
        raise ValueError(f"grads must be finite to clip by norm, got global norm {norm}")
    scale = max_norm / norm if norm > max_norm else 1.0  # shrink only, never stretch
    return Clipped({name: g * scale for name, g in grads.items()}, norm)


def clip_by_value(grads: Mapping[str, np.ndarray], limit: float) -> Clipped:
    """Clamp every entry to [-limit, limit]; ``norm`` is the global norm before clamping."""
    limit = _check_positive(limit, "limit")
    grads = _check_grads(grads)
    norm = global_norm(grads)
    return Clipped({name: np.clip(g, -limit, limit) for name, g in grads.items()}, norm)
