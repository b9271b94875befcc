"""minGRU and minLSTM: gates computed from x_t alone, so the recurrence is a linear scan.

Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), "Were RNNs All We Needed?",
arXiv:2410.01201, sections 3.1 (minGRU) and 3.2 (minLSTM), the non-log-space forms.

    minGRU:   z_t = σ(W_z x_t + b_z)          h̃_t = W_h x_t + b_h
              h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    minLSTM:  f_t = σ(W_f x_t + b_f)   i_t = σ(W_i x_t + b_i)   h̃_t = W_h x_t + b_h
              f'_t = f_t / (f_t + i_t)   i'_t = i_t / (f_t + i_t)
              h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

Both are h_t = a_t ⊙ h_{t-1} + b_t with (a_t, b_t) known for every t before the scan
starts — the answer to "RNNs cannot be parallelised". ``scan`` computes all h_t either with
a sequential loop (``scan_loop``: one multiply-add per step, autograd through each — the
readable form) or with the Hillis-Steele parallel prefix scan (log₂ T steps of
whole-sequence tensor ops: fastest on GPUs). The parallel form composes the affine maps
(a, b) ∘ (a', b') = (a a', a b' + b) directly, without logarithms, so it is exact up to
rounding and never overflows since |a| ≤ 1.

On CPU, ``Recurrent`` runs these cells on recur's compiled loop instead
(``recur.kernels.minimal``: gates, candidate and scan in one pass, its backward written
out; tested equal to this file's step and scan in tests/kernels/test_minimal.py); this
file is the readable path it falls back to and is tested against.

Parameters: ``weight_ih`` (G·H, D) and ``bias_ih`` only (rows z, h̃ for minGRU; f, i, h̃
for minLSTM); there is no ``weight_hh``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from recur.cells.base import CellBase, State, check_choice

SCANS = ("auto", "sequential", "parallel")


def scan_loop(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t, one step at a time with autograd through each (readable)."""
    h = h0
    hs = []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1), strict=True):      # (B, H) each
        h = a_t * h + b_t
        hs.append(h)
    return torch.stack(hs, dim=1)                                    # (B, T, H)


def scan(a: Tensor, b: Tensor, h0: Tensor, method: str = "auto") -> Tensor:
    """All states of h_t = a_t ⊙ h_{t-1} + b_t.

    Args:
        a, b: (B, T, H) coefficients.
        h0: (B, H) initial state.
        method: ``"sequential"``, ``"parallel"`` or ``"auto"`` (parallel on CUDA, else
            sequential — the measured winner on each, see docs/benchmarks.md).

    Returns:
        (B, T, H): h_1 … h_T.
    """
    check_choice("method", method, SCANS)
    if method == "auto":
        method = "parallel" if a.is_cuda else "sequential"
    if method == "sequential":
        return scan_loop(a, b, h0)                                   # (B, T, H)
    # Hillis-Steele inclusive scan over the affine maps; fold h0 into the first step.
    b = torch.cat([a[:, :1] * h0.unsqueeze(1) + b[:, :1], b[:, 1:]], dim=1)  # (B, T, H)
    T = a.shape[1]
    offset = 1
    while offset < T:
        # position t absorbs the composed map ending at t - offset
        b = torch.cat([b[:, :offset], a[:, offset:] * b[:, :-offset] + b[:, offset:]], dim=1)
        a = torch.cat([a[:, :offset], a[:, offset:] * a[:, :-offset]], dim=1)
        offset *= 2
    return b                                                         # (B, T, H)


class _MinimalCell(CellBase):
    """Shared step and scan of the two minimal cells (they differ in ``coefficients``)."""

    has_recurrent_weights = False

    def __init__(self, input_size: int, hidden_size: int, *, scan: str = "auto", **options) -> None:
        self.scan_method = check_choice("scan", scan, SCANS)
        super().__init__(input_size, hidden_size, **options)

    def gates(self, xw: Tensor) -> dict[str, Tensor]:
        """The gates and candidate, from ``xw = input_transform(x)`` alone."""
        raise NotImplementedError

    def coefficients(self, xw: Tensor) -> tuple[Tensor, Tensor]:
        """(a, b) of h_t = a ⊙ h_{t-1} + b from ``xw = input_transform(x)``."""
        return self.coefficients_of(self.gates(xw))

    @staticmethod
    def coefficients_of(gates: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def recur_with_gates(self, xw: Tensor, state: State) -> tuple[State, dict[str, Tensor]]:
        (h_prev,) = state
        gates = self.gates(xw)
        a, b = self.coefficients_of(gates)           # (B, H) each
        return (a * h_prev + b,), gates

    def scan(self, xw: Tensor, h0: Tensor, mask: Tensor | None = None) -> Tensor:
        """All states for a whole sequence: xw (B, T, G·H), h0 (B, H) -> (B, T, H).

        ``mask`` (B, T) bool marks real steps; at padded steps the state is carried
        unchanged (a = 1, b = 0).
        """
        a, b = self.coefficients(xw)                 # (B, T, H) each
        if mask is not None:
            keep = mask.unsqueeze(-1)                # (B, T, 1)
            a = torch.where(keep, a, torch.ones_like(a))
            b = torch.where(keep, b, torch.zeros_like(b))
        return scan(a, b, h0, self.scan_method)


class MinGRU(_MinimalCell):
    """minGRU cell: ``h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t`` with z_t, h̃_t from x_t only.

    Args: input_size, hidden_size, ``scan`` ("auto" | "sequential" | "parallel"), and
    ``bias``, ``init`` as ``CellBase``.
    """

    num_gates = 2

    def gates(self, xw: Tensor) -> dict[str, Tensor]:
        xz, xh = xw.chunk(2, dim=-1)
        z = torch.sigmoid(xz)                        # update gate
        h_tilde = xh                                 # candidate (no tanh in minGRU)
        return {"z": z, "candidate": h_tilde}

    @staticmethod
    def coefficients_of(gates: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        z = gates["z"]
        return 1 - z, z * gates["candidate"]


class MinLSTM(_MinimalCell):
    """minLSTM cell: ``h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t`` with normalised gates from x_t.

    Args: input_size, hidden_size, ``scan`` ("auto" | "sequential" | "parallel"), and
    ``bias``, ``init`` as ``CellBase``.
    """

    num_gates = 3

    def gates(self, xw: Tensor) -> dict[str, Tensor]:
        xf, xi, xh = xw.chunk(3, dim=-1)
        f = torch.sigmoid(xf)                        # forget gate
        i = torch.sigmoid(xi)                        # input gate
        total = f + i                                # normalised so f' + i' = 1
        return {"f": f / total, "i": i / total, "candidate": xh}

    @staticmethod
    def coefficients_of(gates: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return gates["f"], gates["i"] * gates["candidate"]
