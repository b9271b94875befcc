"""recur: recurrent neural networks from their equations.

Shape legend, used in every docstring and shape comment of the package:

    B  batch size               T  time steps (sequence length)
    D  input features           H  hidden size
    L  number of layers         V  vocabulary size
    S  source length            C  number of classes
    G  number of gates (1 Elman, 2 gated RNN, 3 GRU, 4 LSTM)

Tensors are batch-first: a sequence batch is (B, T, D); a state is (B, H), and the
final state of a layer stack is (L * directions, B, H), layer-major (torch.nn's layout).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recur")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from recur.cells import (  # noqa: E402
    GRU,
    LSTM,
    CellBase,
    Elman,
    GatedRNN,
    MinGRU,
    MinLSTM,
    make_cell,
)
from recur.layers import Recurrent, RecurrentOutput  # noqa: E402

__all__ = [
    "CellBase",
    "Elman",
    "GatedRNN",
    "GRU",
    "LSTM",
    "MinGRU",
    "MinLSTM",
    "make_cell",
    "Recurrent",
    "RecurrentOutput",
    "__version__",
]
