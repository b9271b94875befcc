"""Gradient flow through time: how strongly the loss depends on each step's state.

The vanishing / exploding gradient analysis of Bengio, Simard & Frasconi (1994), "Learning
long-term dependencies with gradient descent is difficult", IEEE TNN 5(2), and Pascanu,
Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks", ICML,
section 2: for a loss read at step T,

    ∂L/∂h_t = (∂h_T/∂h_{T-1} · … · ∂h_{t+1}/∂h_t)ᵀ ∂L/∂h_T

and for the Elman cell h_t = f(U x_t + W h_{t-1} + b) each factor is
∂h_t/∂h_{t-1} = diag(f′(net_t)) W. If these Jacobians have norms below 1 the gradient
shrinks geometrically back in time (vanishes); above 1 it can grow (explodes).

``gradient_flow(model, inputs, loss_fn)`` measures both sides of that equation for one
cell of one ``Recurrent`` layer inside any model:

* ``grad_norms[t]`` = ‖∂L/∂h_t‖, the total derivative (through every later step), from
  autograd on the per-step states of the readable path (same weights as the fused path);
* ``jacobian_norms[t]`` = ‖∂s_t/∂s_{t-1}‖ for batch element 0, from ``torch.func.jacrev``
  of ``cell.recur`` (spectral norm by default; Frobenius on request). s is the full state:
  h, or the LSTM's (h, c) concatenated (2H × 2H), since the cell state is the LSTM's path
  through time.

Usage::

    flow = gradient_flow(layer, x)                       # L = sum of the last step's outputs
    flow = gradient_flow(classifier, (tokens, lengths),
                         loss_fn=lambda logits: F.cross_entropy(logits, labels))
    flow.grad_norms          # (T,)
    plot_gradient_flow({"elman": flow_elman, "lstm": flow_lstm}, "flow.png")

Parameter gradients (``.grad``) are left untouched: the gradients are taken with
``torch.autograd.grad``. Call ``model.eval()`` first if the model has dropout.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from recur.cells.base import CellBase, State, check_choice
from recur.layers import Recurrent, RecurrentOutput, run_cell

JACOBIAN_NORMS = ("spectral", "frobenius")


@dataclass(frozen=True)
class GradientFlow:
    """What ``gradient_flow`` measured, for one cell over T steps (t = 1..T at index 0..T-1).

    Norms are float64 tensors on the CPU.

    Attributes:
        grad_norms: (T,) ‖∂L/∂h_t‖, the L2 norm over the whole (B, H) gradient of the
            output state h_t (the batch's gradients together, as the optimizer sees them).
        state_grad_norms: the same for every state tensor: ``{"h": (T,)}``, or
            ``{"h": (T,), "c": (T,)}`` for the LSTM.
        jacobian_norms: (T,) ‖∂s_t/∂s_{t-1}‖ for batch element 0 (s = h, or [h; c] for the
            LSTM), NaN at its padded steps; None when not asked for.
        jacobian: ``"spectral"``, ``"frobenius"`` or None.
        loss: the loss value.
        cell: the cell's name (``"lstm"``...), layer and direction that were measured.
    """

    grad_norms: Tensor
    state_grad_norms: dict[str, Tensor]
    jacobian_norms: Tensor | None
    jacobian: str | None
    loss: float
    cell: str
    layer: int = 0
    direction: int = 0


def gradient_flow(
    model: nn.Module,
    inputs: Any,
    loss_fn: Callable[[Any], Tensor] | None = None,
    *,
    layer: int = -1,
    direction: int = 0,
    jacobian: str | None = "spectral",
    recurrent: str | None = None,
) -> GradientFlow:
    """‖∂L/∂h_t‖ and ‖∂s_t/∂s_{t-1}‖ for every step t of one cell of a Recurrent layer.

    Args:
        model: a ``recur.Recurrent`` layer, or any model whose forward calls one (once).
        inputs: what the model's forward takes: a tensor (``model(inputs)``), a tuple or
            list (``model(*inputs)``) or a dict (``model(**inputs)``). For a Recurrent:
            x (B, T, D), optionally with state and lengths.
        loss_fn: ``loss_fn(model_output) -> scalar tensor``. None: the sum of the last
            step's outputs for a Recurrent (``outputs[:, -1].sum()``), the sum of the
            output for a model that returns one tensor.
        layer: which layer of the stack (default the last).
        direction: 0 forward, 1 reverse (then t counts the steps in the order the reverse
            cell takes them, from each sequence's end).
        jacobian: ``"spectral"`` (default), ``"frobenius"`` or None (skip: it costs T
            Jacobians of size (k·H)², cheap for small H only).
        recurrent: the dotted module name of the Recurrent to measure, when the model has
            more than one (see ``model.named_modules()``).

    Returns:
        ``GradientFlow`` (see there).
    """
    if jacobian is not None:
        check_choice("jacobian", jacobian, JACOBIAN_NORMS)
    rnn = find_recurrent(model, recurrent)
    layer = check_layer_and_direction(rnn, layer, direction)
    recorder = _Recorder(rnn.cells[layer * rnn.num_directions + direction])

    handle = rnn.register_forward_hook(recorder.rerun, with_kwargs=True)
    try:
        with torch.enable_grad():
            output = _call(model, inputs)
            loss = loss_fn(output) if loss_fn is not None else _default_loss(output)
    finally:
        handle.remove()
    if not recorder.states:
        raise ValueError("model did not call its Recurrent layer in forward, so there is no "
                         "gradient flow through time to measure")
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        got = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, got {got}")

    names = recorder.cell.state_names
    flat = [s for step in recorder.states for s in step]                   # T·k tensors (B, H)
    if not all(s.requires_grad for s in flat):
        raise ValueError("the recurrent states do not require grad: run gradient_flow with "
                         "parameters that require grad and outside torch.no_grad()")
    grads = torch.autograd.grad(loss, flat, allow_unused=True)
    T = len(recorder.states)
    norms = torch.zeros(T, len(names), dtype=torch.float64)  # float64: tiny norms stay > 0
    for i, g in enumerate(grads):
        if g is not None:
            norms[i // len(names), i % len(names)] = float(torch.linalg.vector_norm(g.detach()))
    state_grad_norms = {name: norms[:, k].clone() for k, name in enumerate(names)}

    jacobian_norms = None
    if jacobian is not None:
        jacobians = state_jacobians(recorder.cell, recorder.xw[0], recorder.previous_states(0))
        ord_ = 2 if jacobian == "spectral" else "fro"
        jacobian_norms = torch.linalg.matrix_norm(jacobians.double(), ord=ord_)  # (T,)
        if recorder.mask is not None:
            jacobian_norms[~recorder.mask[0].cpu()] = math.nan
    return GradientFlow(
        grad_norms=state_grad_norms["h"],
        state_grad_norms=state_grad_norms,
        jacobian_norms=jacobian_norms,
        jacobian=jacobian,
        loss=float(loss.detach()),
        cell=rnn.cell_name,
        layer=layer,
        direction=direction,
    )


def state_jacobians(cell: CellBase, xw: Tensor, previous: Tensor) -> Tensor:
    """∂s_t/∂s_{t-1} of ``cell.recur`` along one sequence.

    Args:
        cell: the cell.
        xw: (T, G·H) the input projections ``cell.input_transform(x_t)`` of one sequence.
        previous: (T, k·H) the states s_0 … s_{T-1} fed to each step, the k state tensors
            (h, or h and c) concatenated.

    Returns:
        (T, k·H, k·H): row i, column j is ∂s_t[i]/∂s_{t-1}[j]. For the Elman cell this is
        diag(f′(net_t)) W (``tests/diagnostics`` checks it by hand).
    """
    H = cell.hidden_size

    def step(s_prev: Tensor, xw_t: Tensor) -> Tensor:                       # (k·H,), (G·H,)
        state = tuple(part.unsqueeze(0) for part in s_prev.split(H))        # (1, H) each
        new = cell.recur(xw_t.unsqueeze(0), state)
        return torch.cat(new, dim=-1).squeeze(0)                             # (k·H,)

    return torch.func.vmap(torch.func.jacrev(step))(previous, xw).detach()  # (T, kH, kH)


def check_layer_and_direction(rnn: Recurrent, layer: int, direction: int) -> int:
    """The layer index in [0, L) (negative counts from the top); ValueErrors name the
    argument when ``layer`` or ``direction`` is not one of ``rnn``'s."""
    if isinstance(direction, bool) or direction not in range(rnn.num_directions):
        raise ValueError(f"direction must be in [0, {rnn.num_directions - 1}] for this "
                         f"{'bidirectional' if rnn.bidirectional else 'unidirectional'} layer, "
                         f"got {direction!r}")
    if isinstance(layer, bool) or not isinstance(layer, int) \
            or not -rnn.num_layers <= layer < rnn.num_layers:
        raise ValueError(f"layer must be an int in [{-rnn.num_layers}, {rnn.num_layers - 1}], "
                         f"got {layer!r}")
    return layer % rnn.num_layers


def find_recurrent(model: nn.Module, name: str | None = None) -> Recurrent:
    """The Recurrent layer inside ``model`` (the model itself, or its only one, or ``name``)."""
    if name is not None:
        found = dict(model.named_modules()).get(name)
        if not isinstance(found, Recurrent):
            known = [n for n, m in model.named_modules() if isinstance(m, Recurrent)]
            raise ValueError(f"recurrent must name a Recurrent submodule of the model "
                             f"({', '.join(map(repr, known)) or 'there is none'}), got {name!r}")
        return found
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, Recurrent)]
    if not layers:
        raise ValueError(f"model must be a recur.Recurrent or contain one, got "
                         f"{type(model).__name__} with none")
    if len(layers) > 1:
        raise ValueError(f"model has {len(layers)} Recurrent layers "
                         f"({', '.join(repr(n) for n, _ in layers)}); pass recurrent=NAME")
    return layers[0][1]


class _Recorder:
    """A forward hook that re-runs a Recurrent on its readable path, keeping every state.

    The hook replaces the layer's output with the readable path's (tested equal to the
    fused one), in which the measured cell is unrolled step by step so each s_t is a node
    of the graph whose gradient autograd can return.
    """

    def __init__(self, cell: CellBase) -> None:
        self.cell = cell
        self.states: list[State] = []       # s_1 … s_T, each a tuple of (B, H)
        self.initial: State = ()            # s_0
        self.xw: Tensor = torch.empty(0)    # (B, T, G·H), detached
        self.mask: Tensor | None = None     # (B, T) real steps, or None

    def rerun(self, module: Recurrent, args: tuple, kwargs: dict, output: Any) -> RecurrentOutput:
        bound = inspect.signature(module.forward).bind(*args, **kwargs).arguments
        x, state, lengths = bound["x"], bound.get("state"), bound.get("lengths")
        # Recurrent's own checks and layer loop, with our run function for the cell we measure
        lengths = module._check_input(x, state, lengths)
        if state is None:
            state = module.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return module._forward_by_layer(x, tuple(state), lengths, self.run)

    def run(self, cell: CellBase, x: Tensor, state: State, mask: Tensor | None):
        """``run_cell`` for every cell; for the measured one, a recorded step-by-step loop."""
        if cell is not self.cell:
            return run_cell(cell, x, state, mask)
        if self.states:
            raise ValueError("the model called its Recurrent layer more than once in one "
                             "forward; gradient_flow follows a single pass")
        xw = cell.input_transform(x)                                    # (B, T, G·H)
        masks = mask.unbind(1) if mask is not None else [None] * xw.shape[1]
        self.initial, self.xw, self.mask = tuple(s.detach() for s in state), xw.detach(), mask
        for xw_t, m_t in zip(xw.unbind(1), masks, strict=True):          # (B, G·H), (B,)
            new = cell.recur(xw_t, state)     # minGRU/minLSTM too: their step equals the scan
            if m_t is not None:
                keep = m_t.unsqueeze(1)                                 # (B, 1)
                new = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
            self.states.append(new)
            state = new
        return torch.stack([s[0] for s in self.states], dim=1), state  # (B, T, H)

    def previous_states(self, b: int) -> Tensor:
        """(T, k·H): s_0 … s_{T-1} of batch element ``b``, the state tensors concatenated."""
        steps = [self.initial, *self.states[:-1]]
        return torch.stack([torch.cat([s[b] for s in step]).detach() for step in steps])


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _default_loss(output: Any) -> Tensor:
    if isinstance(output, RecurrentOutput):
        return output.outputs[:, -1].sum()
    if isinstance(output, Tensor):
        return output.sum()
    raise ValueError(f"loss_fn is needed: the model returned {type(output).__name__}, not a "
                     f"tensor or RecurrentOutput")


def plot_gradient_flow(
    flows: Mapping[str, GradientFlow], path: str | os.PathLike, title: str | None = None
) -> str:
    """PNG of ‖∂L/∂h_t‖ over t (log scale) for several flows, with their Jacobian norms.

    Args:
        flows: label -> GradientFlow, e.g. ``{"elman": ..., "lstm": ...}``.
        path: the PNG to write (its folder is created).
        title: figure title.

    Returns:
        ``path`` as a str.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not flows:
        raise ValueError("flows must hold at least one GradientFlow, got none")
    with_jacobians = any(f.jacobian_norms is not None for f in flows.values())
    fig = Figure(figsize=(11 if with_jacobians else 6, 4))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2 if with_jacobians else 1, i + 1)
            for i in range(2 if with_jacobians else 1)]
    for label, flow in flows.items():
        t = range(1, len(flow.grad_norms) + 1)
        # an exact 0 (float32 underflow) has no place on a log axis: leave a gap there
        norms = flow.grad_norms.masked_fill(flow.grad_norms == 0, math.nan)
        line, = axes[0].plot(t, norms.tolist(), label=label)
        # a step whose neighbours underflowed draws no line: mark it so it is seen
        finite = torch.nn.functional.pad(norms.isfinite(), (1, 1))
        alone = finite[1:-1] & ~finite[:-2] & ~finite[2:]
        if alone.any():
            steps = alone.nonzero().squeeze(1)
            axes[0].plot((steps + 1).tolist(), norms[steps].tolist(), "o", color=line.get_color())
        if with_jacobians and flow.jacobian_norms is not None:
            axes[1].plot(t, flow.jacobian_norms.tolist(), label=label)
    axes[0].set_yscale("log")
    axes[0].set_title("‖∂L/∂h_t‖", fontsize=10)
    axes[0].set_xlabel("t")
    if with_jacobians:
        kind = next(f.jacobian for f in flows.values() if f.jacobian)
        axes[1].set_title(f"‖∂s_t/∂s_(t-1)‖ ({kind}, sequence 0)", fontsize=10)
        axes[1].set_xlabel("t")
        axes[1].axhline(1.0, color="gray", linestyle="--", linewidth=1)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
