"""The contract every recurrent cell meets, and the argument checks they share.

A cell computes one time step: ``state_t = cell(x_t, state_{t-1})``. The state is always a
tuple of (B, H) tensors — ``(h,)`` for every cell except the LSTM's ``(h, c)`` — so layers,
generation and truncated BPTT treat all cells alike; the cell's output is ``state[0]``.

Every step is split in two so a layer can batch the part that does not depend on time:

    xw = cell.input_transform(x)      # x W_ihᵀ + b_ih, for one step (B, D) or a whole
                                      # sequence (B, T, D) in one GEMM
    state = cell.recur(xw_t, state)   # the recurrent equations, one step

``forward(x, state)`` is exactly ``recur(input_transform(x), state)``.

Parameters follow torch.nn's names and gate order (``weight_ih`` (G·H, D), ``weight_hh``
(G·H, H), ``bias_ih`` and ``bias_hh`` (G·H,)) so weights copy to and from torch.nn and
Keras. ``single_bias=True`` drops ``bias_hh`` (Keras has one bias per gate: LSTM(64) on 128
inputs has (64 + 128 + 1) · 64 · 4 = 49,408 parameters).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]

INITS = ("uniform", "glorot", "identity")


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive int, else raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


class CellBase(nn.Module):
    """One recurrent step with torch.nn-compatible parameters.

    Subclasses set ``num_gates`` (G) and ``state_names`` and implement ``recur``.

    Args:
        input_size: D, features of x_t.
        hidden_size: H, features of h_t.
        bias: learn biases (``bias_ih`` and, unless ``single_bias``, ``bias_hh``).
        single_bias: one bias vector per gate (Keras style) instead of torch's two.
        init: ``"uniform"`` (torch's default, U(-1/√H, 1/√H)), ``"glorot"`` (Keras:
            Glorot-uniform input weights, orthogonal recurrent weights, zero biases) or
            ``"identity"`` (Le et al. 2015, IRNN: recurrent weights = I, input weights
            N(0, 0.001²), zero biases; meant for the ReLU Elman RNN).
    """

    num_gates: ClassVar[int] = 1
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    has_recurrent_weights: ClassVar[bool] = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        single_bias: bool = False,
        init: str = "uniform",
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.init = check_choice("init", init, INITS)
        self.bias = bool(bias)
        self.single_bias = bool(single_bias)
        gh = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gh, input_size))
        if self.has_recurrent_weights:
            self.weight_hh = nn.Parameter(torch.empty(gh, hidden_size))
        else:
            self.register_parameter("weight_hh", None)
        self.bias_ih = nn.Parameter(torch.empty(gh)) if bias else None
        two_biases = bias and not single_bias and self.has_recurrent_weights
        self.bias_hh = nn.Parameter(torch.empty(gh)) if two_biases else None
        self.reset_parameters()

    # -- initialisation -------------------------------------------------------------------

    def reset_parameters(self) -> None:
        """Initialise the weights as ``self.init`` says."""
        H = self.hidden_size
        if self.init == "uniform":
            bound = 1.0 / math.sqrt(H)
            for p in self.parameters(recurse=False):
                nn.init.uniform_(p, -bound, bound)
            return
        for bias in (self.bias_ih, self.bias_hh):
            if bias is not None:
                nn.init.zeros_(bias)
        with torch.no_grad():
            for gate in range(self.num_gates):
                rows = slice(gate * H, (gate + 1) * H)
                if self.init == "glorot":
                    nn.init.xavier_uniform_(self.weight_ih[rows])
                    if self.weight_hh is not None:
                        nn.init.orthogonal_(self.weight_hh[rows])
                else:  # identity (IRNN)
                    nn.init.normal_(self.weight_ih[rows], std=1e-3)
                    if self.weight_hh is not None:
                        self.weight_hh[rows] = torch.eye(H)

    # -- the step -------------------------------------------------------------------------

    def initial_state(
        self, batch_size: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """Zeros for every state tensor: a tuple of (B, H)."""
        device = device or self.weight_ih.device
        dtype = dtype or self.weight_ih.dtype
        return tuple(
            torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
            for _ in self.state_names
        )

    def input_transform(self, x: Tensor) -> Tensor:
        """x W_ihᵀ + b_ih: (..., D) -> (..., G·H). Works on one step or a whole sequence."""
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)

    def hidden_transform(self, h: Tensor) -> Tensor:
        """h W_hhᵀ + b_hh: (B, H) -> (B, G·H)."""
        return nn.functional.linear(h, self.weight_hh, self.bias_hh)

    def recur(self, xw: Tensor, state: State) -> State:
        """The recurrent equations for one step, given ``xw = input_transform(x_t)``."""
        return self.recur_with_gates(xw, state)[0]

    def recur_with_gates(self, xw: Tensor, state: State) -> tuple[State, dict[str, Tensor]]:
        """One step that also returns the gate activations, each (B, H).

        The one implementation of the cell's equations (``recur`` returns its state), so
        what ``recur.diagnostics.record_gates`` shows is what the model computes. Names
        are the equations': LSTM ``i f g o``, GRU ``r z n``, gated ``g n``, minGRU
        ``z candidate``, minLSTM ``f i candidate``; the Elman cell has none.
        """
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None) -> State:
        """One step.

        Args:
            x: (B, D) input at time t.
            state: tuple of (B, H) tensors (``(h,)``, or ``(h, c)`` for the LSTM); zeros if
                None.

        Returns:
            The new state, same layout; the output h_t is ``state[0]``.
        """
        self.check_step_input(x, state)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return self.recur(self.input_transform(x), tuple(state))

    def check_step_input(self, x: Tensor, state: State | None) -> None:
        """Raise a ValueError naming the argument if ``x`` or ``state`` has the wrong shape."""
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"x must have shape (B, {self.input_size}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if state is None:
            return
        if not isinstance(state, (tuple, list)) or len(state) != len(self.state_names):
            names = ", ".join(self.state_names)
            raise ValueError(
                f"state must be a tuple ({names}) of {len(self.state_names)} tensors, "
                f"got {type(state).__name__} of length "
                f"{len(state) if isinstance(state, (tuple, list)) else 'n/a'}"
            )
        expected = (x.shape[0], self.hidden_size)
        for name, s in zip(self.state_names, state, strict=True):
            if not isinstance(s, Tensor) or tuple(s.shape) != expected:
                got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"state {name} must have shape {expected}, got {got}")

    def extra_repr(self) -> str:
        extra = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            extra += ", bias=False"
        elif self.single_bias:
            extra += ", single_bias=True"
        if self.init != "uniform":
            extra += f", init={self.init!r}"
        return extra
