"""Truncated backpropagation through time: the stream layout and ``detach_state``.

A language model trained on one long token stream cannot backpropagate through all of it.
Truncated BPTT cuts the stream into windows of k steps, carries the recurrent state from
one window to the next (so the model still *sees* the whole past) and stops the gradient
at each window edge (so backward costs k steps, not the whole stream)::

    token stream   a b c d e f g h i j k l m n o p q r s t u v w x y
                   |---- row 0 ----|---- row 1 ----|---- row 2 ----|
    cut into B = 3 parallel streams, one contiguous piece per batch row:

                   window 0      window 1
        row 0      a b c d   ‖   e f g h          targets: b c d e ‖ f g h i
        row 1      i j k l   ‖   m n o p                   j k l m ‖ n o p q
        row 2      q r s t   ‖   u v w x                   r s t u ‖ v w x y
                   (B, k) = (3, 4) per window

        state:     h0 ──────► h4 ──────► h8         flows across the edge ‖
        gradient:  ◄──────── ‖ ◄────────            stops at the edge ‖

Row b of window j+1 continues row b of window j, so the state a batch ends with is the
right initial state for the next batch. ``stream_windows`` makes this layout;
``detach_state`` cuts the graph at the edge (the Trainer calls it before every step when
``TrainConfig.tbptt`` is on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor


def detach_state(state: Any) -> Any:
    """The same state with every tensor detached from the autograd graph.

    Works on a tensor, None, and tuples (named tuples too), lists, dicts and dataclasses
    nesting them, e.g. an LSTM's ``(h, c)`` with h and c of shape (L, B, H). Values keep
    their storage (no copy); only the history that produced them is dropped, so the next
    window's backward stops here.
    """
    return map_tensors(Tensor.detach, state)


def map_tensors(fn: Callable[[Tensor], Tensor], value: Any) -> Any:
    """``value`` with ``fn`` applied to every tensor inside it, the containers rebuilt.

    Containers: tuples (named tuples too), lists, dicts and dataclass instances; anything
    else (None, ints, strings) is returned as is. The Trainer also uses it to move
    batches to the device.
    """
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # named tuple
        return type(value)(*(map_tensors(fn, item) for item in value))
    if isinstance(value, tuple | list):
        return type(value)(map_tensors(fn, item) for item in value)
    if isinstance(value, dict):
        return {key: map_tensors(fn, item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            field.name: map_tensors(fn, getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.init
        }
        return dataclasses.replace(value, **changes)
    return value


def stream_windows(ids: Tensor, batch_size: int, window: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Cut one long token stream into B parallel streams and those into windows of k steps.

    Args:
        ids: (N,) integer token ids, the whole stream.
        batch_size: B, the number of parallel streams (batch rows).
        window: k, time steps per window (the truncation length).

    Yields:
        ``(inputs, targets)``, both (B, k) (the last window may be shorter): window j of
        every row, and the same positions shifted one token ahead. The trailing
        ``(N - 1) mod B`` tokens that do not fill a row are dropped.
    """
    if not isinstance(ids, Tensor) or ids.dim() != 1 or torch.is_floating_point(ids):
        shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"ids must be a 1-D integer tensor, got {shape}")
    for name, value in (("batch_size", batch_size), ("window", window)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    steps = (len(ids) - 1) // batch_size  # time steps per stream
    if steps < 1:
        raise ValueError(
            f"ids must hold at least batch_size + 1 = {batch_size + 1} tokens, got {len(ids)}"
        )
    inputs = ids[: batch_size * steps].view(batch_size, steps)  # (B, N // B)
    targets = ids[1 : batch_size * steps + 1].view(batch_size, steps)  # (B, N // B)
    for start in range(0, steps, window):
        yield inputs[:, start : start + window], targets[:, start : start + window]  # (B, k)
