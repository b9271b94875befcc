"""Next-token language model: Embedding → stacked Recurrent → dropout → Linear.

``LanguageModel`` predicts token t+1 from tokens 1..t, carrying its recurrent state across
calls, so one long stream can be read window by window (truncated BPTT) and generation
costs O(1) work per token (``step``).

Regularisation, after Merity et al. 2018, "Regularizing and Optimizing LSTM Language
Models" (AWD-LSTM), §4 — each off at 0:

* ``embed_dropout`` (their dropoute): drop whole rows of the embedding matrix, i.e. every
  occurrence of a word in the batch, scaling the rest by 1 / (1 - p);
* ``input_dropout``, ``hidden_dropout``, ``output_dropout``: variational ("locked")
  dropout (Gal & Ghahramani 2016) on the embeddings, between layers and on the top
  layer's outputs — one mask per sequence, the same at every time step;
* ``weight_drop``: DropConnect (Wan et al. 2013) on each layer's recurrent matrix W_hh,
  one mask per forward call. The dropped matrix is swapped in for the layer's call
  (``torch.func.functional_call``), so the fused kernel is kept and the saved weights
  are the same with and without it (a run can add weight drop when it resumes);
* ``tie_weights``: the output layer shares the embedding matrix (Press & Wolf 2017;
  Inan et al. 2017). When the top layer's H differs from the embedding size E, a linear
  projection H → E comes first.
* ``adaptive_cutoffs``: an adaptive softmax (Grave et al. 2017) instead of the full one —
  the most frequent words in a head, the rest in tail clusters of smaller dimension — tied
  to the embedding when ``tie_weights`` (``recur.models.adaptive_softmax``). The words are
  ranked by their training counts (``LanguageModel.set_word_order``). ``forward`` then
  returns normalised log-probabilities as its logits, and ``forward(..., targets=)``
  computes the loss without them (the training saving).

Weight decay is the optimizer's (``TrainConfig.weight_decay``).

Conditional generation (one-to-many): with ``num_conditions`` = C > 0 the model learns one
vector per condition (a class label, say) and starts the recurrence from it —
``h_0 = tanh(e_c)`` for every layer (an LSTM's c_0 stays 0) — so "positive" and
"negative" openings come from the same weights (``condition_state``).

The state is a tuple with one (L, B, H) tensor per state name (``(h, c)`` for an LSTM),
torch.nn's layout, so ``recur.generation.select_rows(1)`` reorders it for beam search.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.layers import Recurrent
from recur.models.adaptive_softmax import AdaptiveSoftmax, check_cutoffs

DROPOUTS = ("embed_dropout", "input_dropout", "hidden_dropout", "output_dropout", "weight_drop")


@dataclass(frozen=True)
class LanguageModelConfig:
    """Everything needed to rebuild a ``LanguageModel`` (saved in config.json)."""

    vocab_size: int
    embed_dim: int = 256
    cell: str = "lstm"
    hidden_size: int = 512
    num_layers: int = 2
    embed_dropout: float = 0.0
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    output_dropout: float = 0.0
    weight_drop: float = 0.0
    tie_weights: bool = False
    num_conditions: int = 0              # > 0: a learned initial state per condition
    cell_options: dict = field(default_factory=dict)
    adaptive_cutoffs: tuple[int, ...] | None = None  # None: the full softmax over V
    adaptive_div: int = 4                # tail cluster i has dimension D // div**i

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.num_conditions, bool) or not isinstance(self.num_conditions, int) \
                or self.num_conditions < 0:
            raise ValueError(f"num_conditions must be an int >= 0, got {self.num_conditions!r}")
        check_choice("cell", self.cell, tuple(CELLS))
        for name in DROPOUTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if not isinstance(self.tie_weights, bool):
            raise ValueError(f"tie_weights must be True or False, got {self.tie_weights!r}")
        if self.adaptive_cutoffs is not None:
            object.__setattr__(self, "adaptive_cutoffs",
                               check_cutoffs(self.adaptive_cutoffs, self.vocab_size))
        check_positive_int("adaptive_div", self.adaptive_div)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LanguageModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"language model config has unknown keys {sorted(unknown)}; "
                             f"expected a subset of {sorted(known)}")
        return cls(**data)


class LMOutput(NamedTuple):
    """logits: (B, T, V) next-token scores (log-probabilities with an adaptive softmax);
    state: one (L, B, H) tensor per state name."""

    logits: Tensor
    state: tuple[Tensor, ...]


class LMLoss(NamedTuple):
    """loss: () mean cross-entropy (nats per target); state: as in ``LMOutput``."""

    loss: Tensor
    state: tuple[Tensor, ...]


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout on (B, T, F): one (B, 1, F) mask shared by every time step."""
    if not training or p == 0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)  # (B, 1, F)
    return x * mask


def embedding_dropout(embed: nn.Embedding, tokens: Tensor, p: float, training: bool) -> Tensor:
    """Look up ``tokens`` (B, T) with whole embedding rows dropped with probability p."""
    if not training or p == 0:
        return embed(tokens)                                                # (B, T, E)
    weight = embed.weight
    keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)  # (V, 1)
    return nn.functional.embedding(tokens, weight * keep)                   # (B, T, E)


class LanguageModel(nn.Module):
    """Embedding → L recurrent layers → dropout → (projection) → Linear → next-token logits.

    Each layer is its own one-layer ``Recurrent`` (fused kernel when the cell has one), so
    dropout between layers can be variational.
    """

    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.layers = nn.ModuleList(
            Recurrent(c.cell, c.embed_dim if layer == 0 else c.hidden_size, c.hidden_size,
                      **c.cell_options)
            for layer in range(c.num_layers)
        )
        if c.weight_drop:
            for rnn in self.layers:
                cell = rnn.cells[0]
                if getattr(cell, "weight_hh", None) is None:
                    raise ValueError(f"weight_drop needs a cell with recurrent weights W_hh, "
                                     f"got cell {c.cell!r}")
        self.projection = (nn.Linear(c.hidden_size, c.embed_dim, bias=False)
                           if c.tie_weights and c.hidden_size != c.embed_dim else None)
        out_dim = c.embed_dim if c.tie_weights else c.hidden_size
        if c.adaptive_cutoffs is None:
            self.decoder = nn.Linear(out_dim, c.vocab_size)
            if c.tie_weights:
                self.decoder.weight = self.embedding.weight
        else:
            self.adaptive = AdaptiveSoftmax(out_dim, c.vocab_size, c.adaptive_cutoffs,
                                            c.adaptive_div, tied=c.tie_weights)
        self.condition = (nn.Embedding(c.num_conditions, c.num_layers * c.hidden_size)
                          if c.num_conditions else None)
        with torch.no_grad():
            nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
            if c.adaptive_cutoffs is None:
                nn.init.zeros_(self.decoder.bias)

    def set_word_order(self, order: Tensor) -> None:
        """An adaptive softmax's ranking of the words: ``order`` (V,) holds the word ids,
        most frequent first (``recur.models.adaptive_softmax.frequency_order``). Saved
        with the weights."""
        if self.config.adaptive_cutoffs is None:
            raise ValueError("set_word_order needs an adaptive softmax (adaptive_cutoffs)")
        self.adaptive.set_order(order)

    def condition_state(self, conditions: Tensor) -> tuple[Tensor, ...]:
        """The initial state for condition ids (B,): h_0 = tanh(e_c) in every layer, the
        other state tensors (an LSTM's c_0) zero; one (L, B, H) tensor per state name."""
        if self.condition is None:
            raise ValueError("this model has no conditions (num_conditions = 0)")
        B, c = conditions.shape[0], self.config
        h = torch.tanh(self.condition(conditions))                              # (B, L·H)
        h = h.view(B, c.num_layers, c.hidden_size).transpose(0, 1).contiguous()  # (L, B, H)
        return (h, *(torch.zeros_like(h) for _ in self.state_names[1:]))

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.layers[0].state_names

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """Zeros: one (L, B, H) tensor per state name."""
        per_layer = [rnn.initial_state(batch_size) for rnn in self.layers]
        return tuple(torch.cat(s, dim=0) for s in zip(*per_layer, strict=True))

    def forward(self, tokens: Tensor, state: tuple[Tensor, ...] | None = None,
                targets: Tensor | None = None) -> LMOutput | LMLoss:
        """Next-token logits for every position, or the loss against ``targets``.

        Args:
            tokens: (B, T) int64 ids.
            state: the state the previous window ended with (one (L, B, H) tensor per state
                name), or None for zeros.
            targets: (B, T) next-token ids (-100: skipped), or None.

        Returns:
            Without targets, ``LMOutput(logits (B, T, V), state)``: logits[:, t] scores
            token t + 1 (with an adaptive softmax they are its log-probabilities). With
            targets, ``LMLoss(loss, state)``: the mean cross-entropy, which an adaptive
            softmax computes without the (B, T, V) scores. The loss lives in ``forward``
            (as nanoGPT's does) so that DistributedDataParallel sees every parameter used.
        """
        x, new_state = self.features(tokens, state)                              # (B, T, E)
        c = self.config
        if c.adaptive_cutoffs is not None:
            weight = self.embedding.weight if c.tie_weights else None
            if targets is not None:
                return LMLoss(self.adaptive.loss(x, targets, weight), new_state)
            return LMOutput(self.adaptive.log_prob(x, weight), new_state)    # (B, T, V)
        logits = self.decoder(x)                                                # (B, T, V)
        if targets is not None:
            return LMLoss(self.loss(logits, targets), new_state)
        return LMOutput(logits, new_state)

    def features(self, tokens: Tensor, state: tuple[Tensor, ...] | None = None
                 ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The vectors the softmax scores: tokens (B, T) → ((B, T, E), new state)."""
        if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
            got = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be a (B, T) integer tensor, got {got}")
        c = self.config
        x = embedding_dropout(self.embedding, tokens, c.embed_dropout, self.training)  # (B, T, E)
        x = locked_dropout(x, c.input_dropout, self.training)
        finals = []
        for layer, rnn in enumerate(self.layers):
            layer_state = None if state is None else tuple(s[layer:layer + 1] for s in state)
            x, final = self._run_layer(rnn, x, layer_state)                     # (B, T, H)
            finals.append(final)
            p = c.hidden_dropout if layer < c.num_layers - 1 else c.output_dropout
            x = locked_dropout(x, p, self.training)
        if self.projection is not None:
            x = self.projection(x)                                              # (B, T, E)
        new_state = tuple(torch.cat(s, dim=0) for s in zip(*finals, strict=True))  # (L, B, H)
        return x, new_state

    def _run_layer(self, rnn: Recurrent, x: Tensor, state: tuple[Tensor, ...] | None
                   ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One layer over the window; in training with ``weight_drop`` p, with W_hh
        DropConnected: each element zeroed with probability p, the rest scaled by
        1 / (1 - p), one mask for the whole window (the fused kernel reads it once)."""
        p = self.config.weight_drop
        if not (self.training and p):
            return rnn(x, state)
        dropped = nn.functional.dropout(rnn.cells[0].weight_hh, p, training=True)
        return torch.func.functional_call(rnn, {"cells.0.weight_hh": dropped}, (x, state))

    def log_probs(self, features: Tensor) -> Tensor:
        """Normalised float32 log-probabilities (B, T, V) of ``features`` (B, T, E)."""
        if self.config.adaptive_cutoffs is not None:
            weight = self.embedding.weight if self.config.tie_weights else None
            return self.adaptive.log_prob(features, weight).float()
        return self.decoder(features).float().log_softmax(-1)

    def step(self, tokens: Tensor, state: tuple[Tensor, ...] | None = None
             ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One token per row: tokens (B,) → (log_probs (B, V), state). The decoders'
        ``step`` (``recur.generation``)."""
        logits, state = self(tokens.unsqueeze(1), state)                        # (B, 1, V)
        return logits[:, 0].float().log_softmax(-1), state

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean cross-entropy (nats per token) of logits (B, T, V) against targets (B, T)."""
        return nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())

    def example_inputs(self, batch_size: int = 2, length: int = 100) -> tuple[Tensor]:
        """Inputs for ``recur.summary``."""
        return (torch.zeros(batch_size, length, dtype=torch.long),)
