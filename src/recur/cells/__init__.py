"""Recurrent cells, one file per family; each forward mirrors its equations.

``make_cell(name, input_size, hidden_size, **options)`` builds one by name:
``elman`` (alias ``rnn``), ``gated``, ``gru``, ``lstm``, ``mingru``, ``minlstm``.
"""

from __future__ import annotations

from recur.cells.base import CellBase, State
from recur.cells.elman import Elman
from recur.cells.gated import GatedRNN
from recur.cells.gru import GRU
from recur.cells.lstm import LSTM
from recur.cells.minimal import MinGRU, MinLSTM, scan

CELLS: dict[str, type[CellBase]] = {
    "elman": Elman,
    "rnn": Elman,
    "gated": GatedRNN,
    "gru": GRU,
    "lstm": LSTM,
    "mingru": MinGRU,
    "minlstm": MinLSTM,
}


def make_cell(name: str, input_size: int, hidden_size: int, **options) -> CellBase:
    """Build a cell by name (see ``CELLS``); ``options`` go to its constructor."""
    if name not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {name!r}")
    return CELLS[name](input_size, hidden_size, **options)


__all__ = ["CELLS", "CellBase", "Elman", "GatedRNN", "GRU", "LSTM", "MinGRU", "MinLSTM",
           "State", "make_cell", "scan"]
