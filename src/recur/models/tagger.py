"""Many-to-many (synced): ``SequenceTagger`` — one tag per token, for named entities.

    words (B, T) ──► word embedding ─┐
    chars (U, W) ──► char BiLSTM/CNN ─┼─► concat ─► dropout ─► BiLSTM (stacked) ─► dropout
    casing (B, T) ─► casing embedding ┘                    ─► Linear ─► emissions (B, T, C)
                                                           ─► CRF (or softmax) ─► tags

Lample et al. (2016), "Neural Architectures for Named Entity Recognition" (§2-4: BiLSTM-
CRF, character BiLSTM, dropout on the input, the IOBES scheme) and Ma & Hovy (2016),
"End-to-end Sequence Labeling via Bi-directional LSTM-CNNs-CRF" (character CNN);
the casing feature is Reimers & Gurevych (2017), "Reporting Score Distributions Makes a
Difference", §6.

Characters are encoded once per *distinct word in the batch* (``chars`` (U, W) and
``char_index`` (B, T) pointing into it), not once per token: a batch of 32 news
sentences has ~450 tokens but ~250 distinct words. Word dropout replaces a real token's
word id by the unknown id with probability ``word_dropout`` during training, so the
model learns to lean on characters and casing for words it has not seen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor, nn

from recur.cells.base import check_choice, check_positive_int
from recur.crf import CRF, allowed_transitions
from recur.layers import Recurrent

CHAR_ENCODERS = ("lstm", "cnn", "none")
HEADS = ("crf", "softmax")
NUM_CASINGS = 8  # pad + the 7 classes of recur.tasks.tagger.casing


@dataclass(frozen=True)
class TaggerConfig:
    """Everything needed to rebuild a ``SequenceTagger`` (saved in config.json)."""

    num_words: int                    # word vocabulary, pad (0) and unknown (1) included
    num_chars: int                    # character vocabulary, pad (0) and unknown (1) included
    tags: tuple[str, ...]             # tag names, index = class id
    scheme: str = "iob2"              # iob2 | bioes: the CRF's transition constraints
    word_dim: int = 100
    char_encoder: str = "lstm"        # lstm | cnn | none
    char_dim: int = 25
    char_hidden: int = 25             # per direction (lstm) or filters (cnn)
    char_kernel: int = 3              # cnn only
    casing_dim: int = 8               # 0: no casing feature
    cell: str = "lstm"
    hidden_size: int = 200            # per direction
    num_layers: int = 1
    dropout: float = 0.5              # on the word representation and the BiLSTM output
    word_dropout: float = 0.0
    head: str = "crf"                 # crf | softmax
    constrained: bool = True          # forbid invalid transitions in the CRF

    def __post_init__(self) -> None:
        if isinstance(self.tags, list):  # JSON has no tuples
            object.__setattr__(self, "tags", tuple(self.tags))
        for name in ("num_words", "num_chars", "word_dim", "char_dim", "char_hidden",
                     "char_kernel", "hidden_size", "num_layers"):
            check_positive_int(name, getattr(self, name))
        if not self.tags or not all(isinstance(t, str) for t in self.tags):
            raise ValueError(f"tags must be a non-empty list of tag names, got {self.tags!r}")
        check_choice("scheme", self.scheme, ("iob1", "iob2", "bioes"))
        check_choice("char_encoder", self.char_encoder, CHAR_ENCODERS)
        check_choice("head", self.head, HEADS)
        if isinstance(self.casing_dim, bool) or not isinstance(self.casing_dim, int) \
                or self.casing_dim < 0:
            raise ValueError(f"casing_dim must be an int >= 0, got {self.casing_dim!r}")
        for name in ("dropout", "word_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TaggerConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


class TaggerInputs(NamedTuple):
    """The tensors ``SequenceTagger`` reads (``recur.tasks.tagger.TaggerBatch`` has them too)."""

    words: Tensor         # (B, T) word ids, 0-padded
    casing: Tensor        # (B, T) casing classes
    lengths: Tensor       # (B,)
    chars: Tensor         # (U, W) character ids of the batch's distinct words
    char_lengths: Tensor  # (U,)
    char_index: Tensor    # (B, T) row of chars for each token
    tags: Tensor | None = None


class CharCNN(nn.Module):
    """Ma & Hovy's character CNN: embed, convolve (same padding), max over positions."""

    def __init__(self, num_chars: int, dim: int, filters: int, kernel: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, filters, kernel, padding=kernel // 2)
        self.output_size = filters

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """chars (U, W) ids, lengths (U,) -> (U, filters)."""
        x = self.embed(chars).transpose(1, 2)                                # (U, D, W)
        h = self.conv(x)[:, :, : chars.shape[1]]                             # (U, F, W)
        pad = torch.arange(chars.shape[1], device=chars.device) >= lengths.unsqueeze(1)
        return h.masked_fill(pad.unsqueeze(1), float("-inf")).amax(dim=2)    # (U, F)


class CharLSTM(nn.Module):
    """Lample et al.'s character BiLSTM: the final forward and reverse states, concatenated."""

    def __init__(self, num_chars: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, dim, padding_idx=0)
        self.rnn = Recurrent("lstm", dim, hidden, bidirectional=True)
        self.output_size = 2 * hidden

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """chars (U, W) ids, lengths (U,) -> (U, 2·hidden)."""
        _, (h, _) = self.rnn(self.embed(chars), lengths=lengths)            # h (2, U, H)
        return torch.cat([h[0], h[1]], dim=1)                                # (U, 2H)


class SequenceTagger(nn.Module):
    """Word + character + casing features → BiLSTM → per-token emissions → CRF or softmax.

    ``forward(batch)`` returns the emissions (B, T, C); ``loss(batch)`` the mean negative
    log-likelihood per sentence; ``decode(batch)`` one list of tag ids per sentence (its
    own length). ``batch`` is a ``recur.tasks.tagger.TaggerBatch`` (any object with the
    same tensor attributes: ``words, casing, lengths, chars, char_lengths, char_index``
    and, for the loss, ``tags``).
    """

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = config
        self.word_embed = nn.Embedding(config.num_words, config.word_dim, padding_idx=0)
        features = config.word_dim
        self.chars: nn.Module | None = None
        if config.char_encoder == "lstm":
            self.chars = CharLSTM(config.num_chars, config.char_dim, config.char_hidden)
        elif config.char_encoder == "cnn":
            self.chars = CharCNN(config.num_chars, config.char_dim, config.char_hidden,
                                 config.char_kernel)
        if self.chars is not None:
            features += self.chars.output_size
        self.casing_embed = None
        if config.casing_dim:
            self.casing_embed = nn.Embedding(NUM_CASINGS, config.casing_dim, padding_idx=0)
            features += config.casing_dim
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = Recurrent(config.cell, features, config.hidden_size, config.num_layers,
                             bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.emit = nn.Linear(self.rnn.output_size, len(config.tags))
        self.crf = None
        if config.head == "crf":
            allowed = allowed_transitions(list(config.tags), config.scheme) if config.constrained else None
            self.crf = CRF(len(config.tags), allowed)

    def example_inputs(self) -> tuple[TaggerInputs]:
        """A 2-sentence batch (lengths 5 and 3) for ``recur summary``."""
        words = torch.tensor([[2, 3, 4, 5, 6], [7, 8, 9, 0, 0]]) % self.config.num_words
        char_index = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 0, 0]])
        chars = (torch.arange(8 * 4).reshape(8, 4) % (self.config.num_chars - 2)) + 2
        return (TaggerInputs(words, torch.full_like(words, 3), torch.tensor([5, 3]), chars,
                             torch.full((8,), 4), char_index),)

    def features(self, batch) -> Tensor:
        """The per-token input of the BiLSTM: (B, T, word_dim + chars + casing)."""
        words, mask = batch.words, self.mask(batch)                           # (B, T) each
        if self.training and self.config.word_dropout:
            drop = torch.rand(words.shape, device=words.device) < self.config.word_dropout
            words = words.masked_fill(drop & mask, 1)                         # 1 = unknown
        parts = [self.word_embed(words)]                                       # (B, T, Dw)
        if self.chars is not None:
            per_word = self.chars(batch.chars, batch.char_lengths)             # (U, Dc)
            parts.append(per_word[batch.char_index])                           # (B, T, Dc)
        if self.casing_embed is not None:
            parts.append(self.casing_embed(batch.casing))                      # (B, T, Dk)
        return torch.cat(parts, dim=-1)                                        # (B, T, D)

    def mask(self, batch) -> Tensor:
        T = batch.words.shape[1]
        return torch.arange(T, device=batch.words.device) < batch.lengths.to(batch.words.device).unsqueeze(1)

    def forward(self, batch) -> Tensor:
        """Emission scores (B, T, C); zero rows at padded positions are never used."""
        x = self.dropout(self.features(batch))                                 # (B, T, D)
        h, _ = self.rnn(x, lengths=batch.lengths)                              # (B, T, 2H)
        return self.emit(self.dropout(h))                                      # (B, T, C)

    def loss(self, batch, emissions: Tensor | None = None) -> Tensor:
        """Mean over sentences of -log p(tags | words) (CRF) or of the summed token
        cross-entropy (softmax)."""
        emissions = self(batch) if emissions is None else emissions
        mask = self.mask(batch)
        if self.crf is not None:
            return self.crf.neg_log_likelihood(emissions, batch.tags, mask).mean()
        ce = nn.functional.cross_entropy(emissions.transpose(1, 2), batch.tags, reduction="none")
        return (ce * mask).sum() / len(batch.lengths)

    @torch.no_grad()
    def decode(self, batch, emissions: Tensor | None = None) -> list[list[int]]:
        """Best tag ids per sentence: Viterbi (CRF) or per-token argmax (softmax)."""
        emissions = self(batch) if emissions is None else emissions
        mask = self.mask(batch)
        if self.crf is not None:
            return self.crf.decode(emissions, mask).paths
        best = emissions.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, batch.lengths.tolist(), strict=True)]
