"""Many-to-one: ``SequenceClassifier`` — Embedding → Recurrent → pooling → MLP head.

The lecture notes' sentiment model is ``ClassifierConfig.seed()``: TextVectorization to
1,000 tokens → Embedding(1001, 128) → LSTM(64) → Dense(64, relu) → Dense(1, sigmoid),
181,761 parameters with Keras' single-bias LSTM.

Two classes use one logit (sigmoid / binary cross-entropy, as the notes' Dense(1)); more
classes use C logits (softmax / cross-entropy).

With ``input_features`` set (and ``vocab_size`` 0) the model reads real-valued sequences
(B, T, F) instead of token ids — e.g. an image read row by row — through a linear input
layer in place of the embedding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.layers import Recurrent
from recur.models.pooling import POOLINGS, AttentionPooling, pool

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to rebuild a ``SequenceClassifier`` (saved in config.json)."""

    vocab_size: int
    num_classes: int = 2
    input_features: int | None = None      # real-valued inputs (B, T, F) instead of tokens
    embed_dim: int = 128
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0                   # between recurrent layers
    embed_dropout: float = 0.0             # on the embeddings
    pooling: str = "last"                  # last | mean | max | attention
    head_sizes: tuple[int, ...] = (64,)    # hidden Dense layers of the head
    head_activation: str = "relu"
    head_dropout: float = 0.0
    padding_idx: int = 0
    init: str = "torch"                    # torch | keras (embedding U(±0.05), Glorot dense)
    cell_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input_features is None:
            check_positive_int("vocab_size", self.vocab_size)
        else:
            check_positive_int("input_features", self.input_features)
        check_positive_int("embed_dim", self.embed_dim)
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("num_layers", self.num_layers)
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) \
                or self.num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {self.num_classes!r}")
        check_choice("cell", self.cell, tuple(CELLS))
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("head_activation", self.head_activation, tuple(ACTIVATIONS))
        check_choice("init", self.init, ("torch", "keras"))
        for name in ("dropout", "embed_dropout", "head_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
        object.__setattr__(self, "head_sizes", tuple(self.head_sizes))
        for size in self.head_sizes:
            check_positive_int("head_sizes[i]", size)

    @classmethod
    def seed(cls, vocab_size: int = 1001) -> ClassifierConfig:
        """The lecture notes' Keras model, parameter for parameter (181,761 at V = 1001)."""
        return cls(vocab_size=vocab_size, embed_dim=128, cell="lstm", hidden_size=64,
                   head_sizes=(64,), init="keras",
                   cell_options={"single_bias": True, "init": "glorot", "forget_bias": 1.0})

    def to_dict(self) -> dict:
        return asdict(self) | {"head_sizes": list(self.head_sizes)}

    @classmethod
    def from_dict(cls, data: dict) -> ClassifierConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"classifier config has unknown keys {sorted(unknown)}; "
                             f"expected a subset of {sorted(known)}")
        return cls(**data)


class SequenceClassifier(nn.Module):
    """Embedding → Recurrent → pooling → MLP → logits.

    forward(tokens (B, T) long — or (B, T, F) float with ``input_features`` — and lengths
    (B,) long) -> logits: (B,) for two classes (one logit, sigmoid), else (B, C). Padded
    positions (beyond ``lengths``) are ignored.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if c.input_features is None:
            self.embedding = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=c.padding_idx)
        else:
            self.embedding = nn.Linear(c.input_features, c.embed_dim)
        self.embed_dropout = nn.Dropout(c.embed_dropout)
        self.rnn = Recurrent(c.cell, c.embed_dim, c.hidden_size, c.num_layers,
                             bidirectional=c.bidirectional, dropout=c.dropout, **c.cell_options)
        features = self.rnn.output_size
        self.attention = AttentionPooling(features) if c.pooling == "attention" else None
        layers: list[nn.Module] = []
        for size in c.head_sizes:
            layers += [nn.Linear(features, size), ACTIVATIONS[c.head_activation](),
                       nn.Dropout(c.head_dropout)]
            features = size
        self.head = nn.Sequential(*layers)
        self.out = nn.Linear(features, 1 if c.num_classes == 2 else c.num_classes)
        if c.init == "keras":
            self._keras_init()

    def _keras_init(self) -> None:
        """Keras' defaults: Embedding U(-0.05, 0.05), Dense Glorot-uniform with zero bias
        (the recurrent cells take ``cell_options={"init": "glorot"}`` for theirs)."""
        with torch.no_grad():
            if isinstance(self.embedding, nn.Embedding):
                nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)

    @property
    def binary(self) -> bool:
        return self.config.num_classes == 2

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], device=tokens.device)
        x = self.embed_dropout(self.embedding(tokens))                      # (B, T, E)
        outputs, state = self.rnn(x, lengths=lengths)                        # (B, T, dirs·H)
        dirs = self.rnn.num_directions
        final_h = state[0][-dirs:]                                           # (dirs, B, H)
        pooled = pool(self.config.pooling, outputs, final_h, lengths, self.attention)
        logits = self.out(self.head(pooled))                                 # (B, 1) | (B, C)
        return logits.squeeze(-1) if self.binary else logits

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B,) or (B, C) logits -> (B, C) class probabilities."""
        if self.binary:
            p = torch.sigmoid(logits.float())
            return torch.stack([1 - p, p], dim=-1)
        return torch.softmax(logits.float(), dim=-1)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Binary or categorical cross-entropy, mean over the batch."""
        if self.binary:
            return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return nn.functional.cross_entropy(logits.float(), labels.long())

    def example_inputs(self, batch_size: int = 2, length: int = 100) -> tuple[Tensor, Tensor]:
        """Inputs for ``recur.summary``: tokens (B, T) and lengths (B,)."""
        if self.config.input_features is not None:
            tokens = torch.zeros(batch_size, length, self.config.input_features)
        else:
            tokens = torch.ones(batch_size, length, dtype=torch.long)
        return tokens, torch.full((batch_size,), length, dtype=torch.long)
