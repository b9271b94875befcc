"""The Elman (simple) recurrent network.

Elman, J. L. (1990). Finding structure in time. Cognitive Science 14(2), 179-211.
Identity initialisation for the ReLU variant: Le, Jaitly & Hinton (2015), "A simple way to
initialize recurrent networks of rectified linear units" (IRNN), use ``init="identity"``.

    h_t = f(U x_t + W h_{t-1} + b)          f ∈ {tanh, relu, sigmoid}
    y_t = V h_t + c                          (optional readout, ``output_size``)

U is ``weight_ih`` (H, D), W is ``weight_hh`` (H, H), b is ``bias_ih + bias_hh`` (torch.nn
keeps two bias vectors; ``single_bias=True`` keeps one, as Keras' SimpleRNN does).
With tanh or relu and two biases the layer runs torch's fused ``nn.RNN`` kernel.
"""

from __future__ import annotations

from torch import Tensor, nn

from recur.cells.base import CellBase, State, check_choice, check_positive_int

ACTIVATIONS = {"tanh": nn.functional.tanh, "relu": nn.functional.relu, "sigmoid": nn.functional.sigmoid}


class Elman(CellBase):
    """Elman RNN cell: ``h_t = f(U x_t + W h_{t-1} + b)``.

    Args:
        input_size: D.
        hidden_size: H.
        activation: ``"tanh"`` (default), ``"relu"`` or ``"sigmoid"``.
        output_size: if given, a readout ``y_t = V h_t + c`` with ``V`` (O, H) and ``c`` (O,)
            is available as ``readout(h)``; the recurrence itself never uses it.
        **options: ``bias``, ``single_bias``, ``init`` (see ``CellBase``).
    """

    num_gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "tanh",
        output_size: int | None = None,
        **options,
    ) -> None:
        self.activation = check_choice("activation", activation, tuple(ACTIVATIONS))
        super().__init__(input_size, hidden_size, **options)
        self.f = ACTIVATIONS[activation]
        if output_size is not None:
            check_positive_int("output_size", output_size)
            self.V = nn.Linear(hidden_size, output_size)  # weight V (O, H), bias c (O,)
        else:
            self.V = None

    def recur_with_gates(self, xw: Tensor, state: State) -> tuple[State, dict[str, Tensor]]:
        (h_prev,) = state                                  # (B, H)
        h = self.f(xw + self.hidden_transform(h_prev))     # f(U x_t + W h_{t-1} + b)
        return (h,), {}

    def readout(self, h: Tensor) -> Tensor:
        """y_t = V h_t + c: (..., H) -> (..., O)."""
        if self.V is None:
            raise ValueError("readout needs output_size to be set when the cell is built")
        return self.V(h)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", activation={self.activation!r}"
