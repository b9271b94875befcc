"""CNN + RNN: ``ConvRecurrent`` — a convolutional feature extractor read as a sequence by a
``Recurrent`` layer ("RNN after CNN"), or a convolutional recurrence ("mixed").

Image mode (``conv="2d"``), an image (B, H, W) with one channel::

    x (B, 1, H, W) → [Conv2d 3×3, same padding → ReLU] × len(channels) → (B, C, H, W)
    → read row by row: (B, T=H, C·W) → Recurrent → last h_T (B, H) → Linear → logits (B, C)

Sequence mode (``conv="1d"``), a sequence (B, T, F)::

    x → [Conv1d over time, same padding → ReLU] × len(channels) → (B, T, C) → Recurrent → ...

Mixed mode (``conv="mixed"``): a convolutional GRU over the rows — the state is a feature
map h_t (B, C, W) rather than a vector, and every gate is a 1-D convolution along the row
(Shi et al. 2015, "Convolutional LSTM Network", with GRU gates as Ballas et al. 2016)::

    z_t = σ(conv_xz(x_t) + conv_hz(h_{t−1}))
    r_t = σ(conv_xr(x_t) + conv_hr(h_{t−1}))
    n_t = tanh(conv_xn(x_t) + r_t ⊙ conv_hn(h_{t−1}))
    h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ n_t

then the last map is flattened → Linear → logits.

Every mode takes the batches of ``recur.tasks.sequences`` (``tokens`` (B, T, F) float and
``lengths``) and exposes ``loss`` / ``probabilities`` like ``SequenceClassifier``; inputs
are full length (images), so ``lengths`` is accepted and must equal T.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.layers import Recurrent

CONVS = ("2d", "1d", "mixed")


@dataclass(frozen=True)
class ConvRecurrentConfig:
    """Everything needed to rebuild a ``ConvRecurrent`` (saved in config.json)."""

    num_classes: int
    height: int                         # T: rows of an image, steps of a sequence
    width: int                          # F: pixels per row, features per step
    conv: str = "2d"                    # 2d | 1d | mixed
    channels: tuple[int, ...] = (16, 32)
    kernel_size: int = 3
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0                # before the output layer

    def __post_init__(self) -> None:
        for name in ("num_classes", "height", "width", "kernel_size", "hidden_size", "num_layers"):
            check_positive_int(name, getattr(self, name))
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        check_choice("conv", self.conv, CONVS)
        check_choice("cell", self.cell, tuple(CELLS))
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels:
            raise ValueError("channels must name at least one convolution, got ()")
        for c in self.channels:
            check_positive_int("channels[i]", c)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {self.kernel_size}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self) | {"channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict) -> ConvRecurrentConfig:
        return cls(**data)


class ConvGRU1d(nn.Module):
    """A GRU whose state is a (C, W) feature map and whose gates are 1-D convolutions."""

    def __init__(self, in_channels: int, channels: int, kernel_size: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.x_gates = nn.Conv1d(in_channels, 3 * channels, kernel_size, padding=pad)
        self.h_gates = nn.Conv1d(channels, 3 * channels, kernel_size, padding=pad)
        self.channels = channels

    def forward(self, rows: Tensor) -> Tensor:
        """rows: (B, T, C_in, W) -> the last state (B, C, W)."""
        B, _, _, W = rows.shape
        h = rows.new_zeros(B, self.channels, W)                              # (B, C, W)
        for x in rows.unbind(1):                                             # (B, C_in, W)
            xz, xr, xn = self.x_gates(x).chunk(3, dim=1)                     # (B, C, W) each
            hz, hr, hn = self.h_gates(h).chunk(3, dim=1)
            z = torch.sigmoid(xz + hz)
            r = torch.sigmoid(xr + hr)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * h + z * n
        return h


class ConvRecurrent(nn.Module):
    """Conv feature extractor → Recurrent (or a ConvGRU) → logits; see the module docstring.

    forward(tokens (B, T, F) float, lengths (B,) or None) -> logits (B, num_classes).
    """

    def __init__(self, config: ConvRecurrentConfig) -> None:
        super().__init__()
        self.config = c = config
        k, pad = c.kernel_size, c.kernel_size // 2
        layers: list[nn.Module] = []
        previous = 1
        if c.conv == "2d":
            for channels in c.channels:
                layers += [nn.Conv2d(previous, channels, k, padding=pad), nn.ReLU()]
                previous = channels
            features = previous * c.width
        elif c.conv == "1d":
            previous = c.width
            for channels in c.channels:
                layers += [nn.Conv1d(previous, channels, k, padding=pad), nn.ReLU()]
                previous = channels
            features = previous
        else:  # mixed: a conv front end on each row, then the ConvGRU over rows
            for channels in c.channels[:-1]:
                layers += [nn.Conv2d(previous, channels, k, padding=pad), nn.ReLU()]
                previous = channels
            features = 0
        self.features = nn.Sequential(*layers)
        if c.conv == "mixed":
            self.rnn = ConvGRU1d(previous, c.channels[-1], k)
            out_features = c.channels[-1] * c.width
        else:
            self.rnn = Recurrent(c.cell, features, c.hidden_size, c.num_layers)
            out_features = c.hidden_size
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(out_features, c.num_classes)

    binary = False

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        c = self.config
        B, T, F = tokens.shape
        if lengths is not None and bool((lengths != T).any()):
            raise ValueError("ConvRecurrent reads full-length inputs; got lengths shorter than T")
        if c.conv == "1d":
            x = self.features(tokens.transpose(1, 2)).transpose(1, 2)        # (B, T, C)
            out = self.rnn(x).outputs[:, -1]                                 # (B, H)
        else:
            maps = self.features(tokens.unsqueeze(1))                        # (B, C, T, F)
            if c.conv == "2d":
                rows = maps.permute(0, 2, 1, 3).reshape(B, T, -1)            # (B, T, C·F)
                out = self.rnn(rows).outputs[:, -1]                          # (B, H)
            else:
                last = self.rnn(maps.permute(0, 2, 1, 3))                    # (B, C, F)
                out = last.reshape(B, -1)                                    # (B, C·F)
        return self.out(self.dropout(out))                                   # (B, classes)

    def probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return nn.functional.cross_entropy(logits.float(), labels.long())

    def example_inputs(self, batch_size: int = 2, length: int | None = None):
        T = length or self.config.height
        return (torch.zeros(batch_size, T, self.config.width),
                torch.full((batch_size,), T, dtype=torch.long))
