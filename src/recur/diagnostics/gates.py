"""Gate activations and states over an input: what each cell let through, step by step.

``record_gates(model, inputs)`` runs the model once and, for one cell of one ``Recurrent``
layer, keeps every step's gates (the LSTM's input, forget and output gates and candidate,
the GRU's reset and update gates and candidate, the gated RNN's g, minGRU's z...) and
states (h, and the LSTM's cell state c). The values come from the cell's own
``recur_with_gates`` — the one implementation of its equations — on the readable path,
which is tested equal to the fused kernels, so they are what the model computes.

    rec = record_gates(classifier, (tokens, lengths))
    rec.values["f"]            # (B, T, H) forget-gate activations
    plot_gates(rec, "gates.png", tokens=["this", "movie", ...])

Padded steps (beyond ``lengths``) are NaN.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from recur.cells.base import CellBase, State
from recur.diagnostics.gradient_flow import _call, check_layer_and_direction, find_recurrent
from recur.layers import Recurrent, run_cell


@dataclass(frozen=True)
class GateRecording:
    """What ``record_gates`` kept for one cell over T steps.

    Attributes:
        values: name -> (B, T, H) float32 CPU tensor: the gates in the cell's order, then
            the states (``h``, and ``c`` for the LSTM). NaN at padded steps.
        gate_names: the names in ``values`` that are gates (the rest are states).
        cell: the cell's name (``"lstm"``...).
        layer, direction: which cell of the stack was recorded.
    """

    values: dict[str, Tensor]
    gate_names: tuple[str, ...]
    cell: str
    layer: int = 0
    direction: int = 0

    def mean_over_units(self, batch_index: int = 0) -> dict[str, Tensor]:
        """name -> (T,) the mean over the H units of one sequence (NaN where padded)."""
        return {name: v[batch_index].mean(dim=-1) for name, v in self.values.items()}


def record_gates(
    model: nn.Module,
    inputs: Any,
    *,
    layer: int = -1,
    direction: int = 0,
    recurrent: str | None = None,
) -> GateRecording:
    """Gate activations and states of one cell for every step of one forward pass.

    Args:
        model: a ``recur.Recurrent`` layer, or any model whose forward calls one (once).
        inputs: what the model's forward takes: a tensor, a tuple/list (positional) or a
            dict (keywords); e.g. ``(tokens, lengths)`` for a classifier.
        layer: which layer of the stack (default the last).
        direction: 0 forward, 1 reverse (then t still indexes input positions).
        recurrent: the dotted module name of the Recurrent, when the model has several.

    Returns:
        ``GateRecording`` (see there). The model's parameters and output are unaffected.
    """
    rnn = find_recurrent(model, recurrent)
    layer = check_layer_and_direction(rnn, layer, direction)
    recorder = _GateRecorder(rnn.cells[layer * rnn.num_directions + direction])
    handle = rnn.register_forward_hook(recorder.rerun, with_kwargs=True)
    try:
        with torch.no_grad():
            _call(model, inputs)
    finally:
        handle.remove()
    if recorder.values is None:
        raise ValueError("model did not call its Recurrent layer in forward, so there are no "
                         "gates to record")
    values = recorder.values
    if direction == 1:  # the reverse cell ran on each sequence reversed within its length
        lengths = recorder.lengths
        values = {name: _reverse(v, lengths) for name, v in values.items()}
    return GateRecording(values=values, gate_names=recorder.gate_names, cell=rnn.cell_name,
                         layer=layer, direction=direction)


class _GateRecorder:
    """A forward hook that re-runs a Recurrent on its readable path, keeping the gates."""

    def __init__(self, cell: CellBase) -> None:
        self.cell = cell
        self.values: dict[str, Tensor] | None = None
        self.gate_names: tuple[str, ...] = ()
        self.lengths: Tensor | None = None

    def rerun(self, module: Recurrent, args: tuple, kwargs: dict, output: Any) -> Any:
        bound = inspect.signature(module.forward).bind(*args, **kwargs).arguments
        x, state, lengths = bound["x"], bound.get("state"), bound.get("lengths")
        lengths = module._check_input(x, state, lengths)
        self.lengths = lengths
        if state is None:
            state = module.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        module._forward_by_layer(x, tuple(state), lengths, self.run)
        return output  # the model's own output is kept

    def run(self, cell: CellBase, x: Tensor, state: State, mask: Tensor | None):
        if cell is not self.cell:
            return run_cell(cell, x, state, mask)
        if self.values is not None:
            raise ValueError("the model called its Recurrent layer more than once in one "
                             "forward; record_gates follows a single pass")
        xw = cell.input_transform(x)                                    # (B, T, G·H)
        masks = mask.unbind(1) if mask is not None else [None] * xw.shape[1]
        steps: list[dict[str, Tensor]] = []
        outputs = []
        for xw_t, m_t in zip(xw.unbind(1), masks, strict=True):          # (B, G·H), (B,)
            new, gates = cell.recur_with_gates(xw_t, state)
            if m_t is not None:
                keep = m_t.unsqueeze(1)                                 # (B, 1)
                new = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
            step = dict(gates) | dict(zip(cell.state_names, new, strict=True))
            if m_t is not None:
                nan = torch.full_like(new[0], float("nan"))
                step = {k: torch.where(m_t.unsqueeze(1), v, nan) for k, v in step.items()}
            steps.append(step)
            state = new
            outputs.append(new[0])
        self.gate_names = tuple(k for k in steps[0] if k not in cell.state_names)
        self.values = {k: torch.stack([s[k] for s in steps], dim=1).float().cpu()
                       for k in steps[0]}                               # (B, T, H) each
        return torch.stack(outputs, dim=1), state


def _reverse(v: Tensor, lengths: Tensor | None) -> Tensor:
    """Undo the reverse direction's per-sequence reversal: step k of a sequence of length
    L is input position L - 1 - k; padded positions stay NaN at the end."""
    from recur.layers import reverse_padded

    return reverse_padded(v, None if lengths is None else lengths.cpu())


def plot_gates(
    recording: GateRecording,
    path: str | os.PathLike,
    *,
    tokens: Sequence[str] | None = None,
    batch_index: int = 0,
    units: int = 32,
    title: str | None = None,
) -> str:
    """PNG heatmaps, one panel per gate and state: units (rows) × time steps (columns).

    Args:
        recording: from ``record_gates``.
        path: the PNG to write (its folder is created).
        tokens: labels of the time steps (e.g. the input words); at most ~80 are legible.
        batch_index: which sequence of the batch.
        units: show the first this many hidden units (all if fewer).
        title: figure title.

    Returns:
        ``path`` as a str.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(recording.values)
    first = recording.values[names[0]]
    if not 0 <= batch_index < first.shape[0]:
        raise ValueError(f"batch_index must be in [0, {first.shape[0] - 1}], got {batch_index}")
    T = first.shape[1]
    if tokens is not None and len(tokens) != T:
        raise ValueError(f"tokens must have one label per step ({T}), got {len(tokens)}")
    fig = Figure(figsize=(max(6.0, 0.22 * T + 2), 1.6 * len(names) + 1), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        v = recording.values[name][batch_index, :, :units].T.numpy()   # (units, T)
        finite = v[np.isfinite(v)]
        in_unit = finite.size == 0 or (finite.min() >= 0 and finite.max() <= 1)
        bound = 1.0 if in_unit or finite.size == 0 else max(1.0, float(np.abs(finite).max()))
        # sigmoid gates on [0, 1]; states and candidates on a symmetric diverging scale
        image = ax.imshow(v, aspect="auto", interpolation="nearest",
                          vmin=0.0 if in_unit else -bound, vmax=bound,
                          cmap="viridis" if in_unit else "RdBu_r")
        ax.set_ylabel(name)
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.02)
        if tokens is not None:
            ax.set_xticks(range(T))
            ax.set_xticklabels(tokens, rotation=90, fontsize=7)
        else:
            ax.set_xticks([])
    axes[-1].set_xlabel("time step")
    fig.suptitle(title or f"{recording.cell} layer {recording.layer}: gates and states "
                 f"(first {min(units, first.shape[2])} units)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return str(path)
