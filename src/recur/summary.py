"""``summary(model)``: a Keras-style table of layers, output shapes and parameter counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: str
    params: int


def _shape(value) -> str:
    if isinstance(value, Tensor):
        return str((None, *value.shape[1:]))
    if isinstance(value, tuple) and value and isinstance(value[0], Tensor):
        return _shape(value[0])
    return "?"


def _children(model: nn.Module):
    """The model's children, with containers (ModuleList / ModuleDict, e.g. the members of a
    forecaster ensemble) opened one level: a container is never called, so it has no shape."""
    for name, child in model.named_children():
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            for sub, grandchild in child.named_children():
                yield f"{name}.{sub}", grandchild
        else:
            yield name, child


def summary_rows(model: nn.Module, *inputs: Tensor) -> list[LayerRow]:
    """Run ``model(*inputs)`` (default ``model.example_inputs()``) and record each child."""
    if not inputs:
        if not hasattr(model, "example_inputs"):
            raise ValueError(f"{type(model).__name__} has no example_inputs(): pass inputs "
                             "to summary(model, *inputs)")
        inputs = model.example_inputs()
    shapes: dict[str, str] = {}
    hooks = [
        child.register_forward_hook(lambda _m, _i, out, name=name: shapes.__setitem__(name, _shape(out)))
        for name, child in _children(model)
    ]
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            model(*inputs)
            model.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    rows = []
    for name, child in _children(model):
        params = sum(p.numel() for p in child.parameters())
        if params == 0 and name not in shapes:
            continue
        rows.append(LayerRow(name, type(child).__name__, shapes.get(name, "-"), params))
    return rows


def summary(model: nn.Module, *inputs: Tensor) -> str:
    """The table as text, with total and trainable parameter counts."""
    rows = summary_rows(model, *inputs)
    header = ("Layer (type)", "Output shape", "Param #")
    lines = [(f"{r.name} ({r.kind})", r.output_shape, f"{r.params:,}") for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    rule = "─" * (sum(widths) + 4)

    def fmt(cells):
        return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}"

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return "\n".join([rule, fmt(header), rule, *map(fmt, lines), rule,
                      f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                      f"Non-trainable params: {total - trainable:,}"])
