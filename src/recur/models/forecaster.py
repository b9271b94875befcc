"""Time-series forecasters: an encoder RNN with a direct multi-step head, and an
autoregressive encoder-decoder (seq2seq).

Both read a window of L past steps — the scaled value (minus the window's last value) and
K known covariates — and return h future steps, each as Q quantiles:

    direct   x (B, L, 1+K) → Recurrent → h_L (B, H) ⊕ future covariates (B, h·K)
             → MLP → (B, h, Q)                          all h steps at once
    seq2seq  x (B, L, 1+K) → encoder Recurrent → state → decoder Recurrent, one step at a
             time: input [ŷ_{t-1}, c_t] (B, 1+K) → Linear → (B, Q); ŷ_t (the median) is
             fed to the next step, in training as at inference (no teacher forcing, so
             training sees its own errors as a forecast does)

Quantile outputs are trained with the pinball loss (Koenker & Bassett 1978)::

    ρ_q(y, ŷ) = max(q·(y − ŷ), (q − 1)·(y − ŷ))

With ``quantiles = (0.5,)`` it is half the absolute error; the median is the point
forecast. ``ensemble > 1`` holds that many independently initialised members trained on
the same batches (the loss is their sum) and averages their outputs. ``input_lengths``
gives the members different views of the window: member i reads only its last
``input_lengths[i mod len]`` steps (the window is as long as the longest), so one ensemble
mixes seeds and input lengths — the cheapest variance reducer on short series.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.layers import Recurrent

KINDS = ("direct", "seq2seq")


@dataclass(frozen=True)
class ForecasterConfig:
    """Everything needed to rebuild a ``Forecaster`` (saved in config.json)."""

    horizon: int
    num_covariates: int = 0
    kind: str = "direct"                   # direct | seq2seq
    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    head_size: int = 64                    # hidden layer of the direct head
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    ensemble: int = 1
    input_lengths: tuple[int, ...] = ()    # member i reads the last input_lengths[i % n] steps
    cell_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_positive_int("horizon", self.horizon)
        if isinstance(self.num_covariates, bool) or not isinstance(self.num_covariates, int) \
                or self.num_covariates < 0:
            raise ValueError(f"num_covariates must be an int >= 0, got {self.num_covariates!r}")
        check_choice("kind", self.kind, KINDS)
        check_choice("cell", self.cell, tuple(CELLS))
        for name in ("hidden_size", "num_layers", "head_size", "ensemble"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}")
        quantiles = tuple(float(q) for q in self.quantiles)
        if not quantiles or any(not 0 < q < 1 for q in quantiles) \
                or list(quantiles) != sorted(set(quantiles)) or 0.5 not in quantiles:
            raise ValueError("quantiles must be increasing numbers in (0, 1) including 0.5, "
                             f"got {self.quantiles!r}")
        object.__setattr__(self, "quantiles", quantiles)
        lengths = tuple(self.input_lengths)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in lengths):
            raise ValueError(f"input_lengths must be positive ints, got {self.input_lengths!r}")
        object.__setattr__(self, "input_lengths", lengths)

    def member_input_length(self, i: int) -> int | None:
        """How many of the window's last steps member i reads (None: all of them)."""
        return self.input_lengths[i % len(self.input_lengths)] if self.input_lengths else None

    @property
    def median_index(self) -> int:
        return self.quantiles.index(0.5)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["quantiles"] = list(self.quantiles)
        data["input_lengths"] = list(self.input_lengths)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ForecasterConfig:
        return cls(**data)


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor,
                 mask: Tensor | None = None) -> Tensor:
    """Mean pinball loss.

    Args:
        pred: (B, h, Q) quantile forecasts.
        target: (B, h) true values.
        quantiles: (Q,) the levels q.
        mask: (B, h) 1 for the steps that count, 0 for padding (a global model pads the
            targets of its shorter-horizon series); None: every step counts.
    """
    diff = target.unsqueeze(-1) - pred                                      # (B, h, Q)
    loss = torch.maximum(quantiles * diff, (quantiles - 1) * diff)          # (B, h, Q)
    if mask is None:
        return loss.mean()
    return (loss * mask.unsqueeze(-1)).sum() / (mask.sum() * len(quantiles))


class _Member(nn.Module):
    """One forecaster (an ensemble holds several)."""

    def __init__(self, config: ForecasterConfig, input_length: int | None = None) -> None:
        super().__init__()
        c = config
        self.config, self.input_length = c, input_length
        Q, K, h = len(c.quantiles), c.num_covariates, c.horizon
        self.encoder = Recurrent(c.cell, 1 + K, c.hidden_size, c.num_layers, dropout=c.dropout,
                                 **c.cell_options)
        if c.kind == "direct":
            self.head = nn.Sequential(nn.Linear(c.hidden_size + h * K, c.head_size), nn.ReLU(),
                                      nn.Linear(c.head_size, h * Q))
        else:
            self.decoder = Recurrent(c.cell, 1 + K, c.hidden_size, c.num_layers,
                                     **c.cell_options)
            self.head = nn.Linear(c.hidden_size, Q)
        # The last layer starts at zero: an untrained forecaster predicts its baseline (the
        # last value, or seasonal naive with a seasonal anchor) and training learns the
        # correction — a short run cannot do worse than the baseline by much.
        last = self.head[-1] if isinstance(self.head, nn.Sequential) else self.head
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor, future: Tensor) -> Tensor:
        c = self.config
        B = x.shape[0]
        if self.input_length is not None:
            if x.shape[1] < self.input_length:
                raise ValueError(f"this member reads {self.input_length} steps, the window "
                                 f"has {x.shape[1]}")
            x = x[:, -self.input_length :]                                  # (B, L_i, 1+K)
        out = self.encoder(x)                                              # (B, L_i, H)
        if c.kind == "direct":
            last = out.outputs[:, -1]                                       # (B, H)
            features = torch.cat([last, future.reshape(B, -1)], dim=1)      # (B, H + h·K)
            return self.head(features).view(B, c.horizon, len(c.quantiles))  # (B, h, Q)
        state = out.state
        previous = x.new_zeros(B, 1)  # inputs are anchored: the last value is 0 by definition
        steps = []
        for cov in future.unbind(1):                                        # (B, K) each
            step = self.decoder.step(torch.cat([previous, cov], dim=1), state)
            state = step.state
            q = self.head(step.outputs)                                     # (B, Q)
            steps.append(q)
            previous = q[:, c.median_index : c.median_index + 1]            # (B, 1)
        return torch.stack(steps, dim=1)                                    # (B, h, Q)


class Forecaster(nn.Module):
    """Window → h-step quantile forecast (scaled, anchored units).

    ``forward(x, future)``: x (B, L, 1+K) anchored scaled values and covariates; future
    (B, h, K) covariates of the target steps. Returns (B, h, Q), the ensemble mean.
    ``member_outputs`` gives (E, B, h, Q) for the loss, so each member is trained alone.
    """

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(_Member(config, config.member_input_length(i))
                                     for i in range(config.ensemble))
        self.register_buffer("quantile_levels", torch.tensor(config.quantiles),
                             persistent=False)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, Tensor]:
        """Inputs for ``recur summary``: a window x (B, L, 1+K) and future (B, h, K)."""
        c = self.config
        L = max(c.input_lengths, default=2 * c.horizon)
        return (torch.zeros(batch_size, L, 1 + c.num_covariates),
                torch.zeros(batch_size, c.horizon, c.num_covariates))

    def member_outputs(self, x: Tensor, future: Tensor) -> Tensor:
        return torch.stack([m(x, future) for m in self.members])           # (E, B, h, Q)

    def forward(self, x: Tensor, future: Tensor) -> Tensor:
        out = self.member_outputs(x, future).mean(0)                        # (B, h, Q)
        # Averaged quantiles can cross; sort them so intervals stay ordered.
        return out.sort(dim=-1).values

    def loss(self, x: Tensor, future: Tensor, target: Tensor,
             mask: Tensor | None = None) -> Tensor:
        """Sum over members of each member's mean pinball loss (over the steps ``mask``
        keeps, (B, h), if given)."""
        outs = self.member_outputs(x, future)
        return sum(pinball_loss(o, target, self.quantile_levels, mask) for o in outs.unbind(0))
