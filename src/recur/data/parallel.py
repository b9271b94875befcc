"""Parallel text for translation: aligned files → tokenizers → filtered, bucketed batches.

    read_parallel("train.de.gz", "train.en.gz")     -> ParallelTexts(src, tgt)   line i ↔ line i
    ParallelTokenizers.fit(texts, ...)              joint BPE, separate BPE, or word level
    encode_pairs(tokenizers, texts, max_length)     -> ids, with too-long pairs filtered
    ParallelBatcher(src_ids, tgt_ids, ...)          -> ParallelBatch(src, src_lengths,
                                                      tgt_in, tgt_out, index)

Target ids gain two specials above the tokenizer's vocabulary: ``bos = V`` and
``eos = V + 1`` (so any recur tokenizer works unchanged); ``tgt_in`` is ``bos y_1 .. y_n``
and ``tgt_out`` is ``y_1 .. y_n eos``, both right-padded with ``pad_id``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recur.cells.base import check_choice, check_positive_int
from recur.data.batching import BucketBatcher
from recur.data.text import _as_path, _decode, _read_bytes
from recur.data.vocab import SubwordTokenizer, Tokenizer, WordTokenizer, load_tokenizer

PathLike = str | os.PathLike
TOKENIZER_KINDS = ("bpe", "word")


@dataclass(frozen=True)
class ParallelTexts:
    """Aligned source and target sentences: ``src[i]`` translates to ``tgt[i]``."""

    src: list[str]
    tgt: list[str]

    def __post_init__(self) -> None:
        if len(self.src) != len(self.tgt):
            raise ValueError(f"src and tgt must have the same number of sentences, got "
                             f"{len(self.src)} and {len(self.tgt)}")

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, indices: Sequence[int]) -> ParallelTexts:
        return ParallelTexts([self.src[i] for i in indices], [self.tgt[i] for i in indices])


def read_lines(path: PathLike, what: str = "file") -> list[str]:
    """The lines of a UTF-8 text file (plain or gzip), without line ends."""
    path = _as_path(path, what)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder; expected a text file with one "
                                "sentence per line")
    text = _decode(_read_bytes(path), path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    return [line.rstrip("\r") for line in lines]


def read_parallel(src_path: PathLike, tgt_path: PathLike) -> ParallelTexts:
    """Two aligned files, one sentence per line (plain or .gz).

    A different number of lines is an error naming both files and their counts.
    """
    src = read_lines(src_path, "source file")
    tgt = read_lines(tgt_path, "target file")
    if len(src) != len(tgt):
        raise ValueError(f"parallel files must have the same number of lines: {src_path} has "
                         f"{len(src):,}, {tgt_path} has {len(tgt):,}")
    if not src:
        raise ValueError(f"parallel files {src_path} and {tgt_path} are empty")
    return ParallelTexts(src, tgt)


# -- tokenizers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParallelTokenizerConfig:
    """How sentences become ids (saved in the checkpoint's config.json).

    kind: ``"bpe"`` (reversible byte-pair encoding, HF ``tokenizers``) or ``"word"``.
    joint: one vocabulary learnt from both languages (``vocab_size`` in all) instead of
        one per language (``vocab_size`` each).
    lowercase: lower-case both sides (outputs then are lower-case too).
    """

    kind: str = "bpe"
    joint: bool = True
    vocab_size: int = 8000
    min_freq: int = 2
    lowercase: bool = False

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, TOKENIZER_KINDS)
        check_positive_int("vocab_size", self.vocab_size)
        check_positive_int("min_freq", self.min_freq)


def _new_tokenizer(config: ParallelTokenizerConfig) -> Tokenizer:
    if config.kind == "bpe":
        return SubwordTokenizer(kind="bpe", vocab_size=config.vocab_size, min_freq=config.min_freq,
                                lowercase=config.lowercase, strip_html=False,
                                pretokenizer="metaspace")
    # Word level splits on whitespace only (punctuation stays on its word, as in the text).
    return WordTokenizer(max_tokens=config.vocab_size, min_freq=config.min_freq,
                         standardize="lower" if config.lowercase else None, strip_html=False)


class ParallelTokenizers:
    """The source and target tokenizers (the same object when ``joint``)."""

    def __init__(self, config: ParallelTokenizerConfig, src: Tokenizer, tgt: Tokenizer) -> None:
        self.config, self.src, self.tgt = config, src, tgt

    @classmethod
    def fit(cls, texts: ParallelTexts, config: ParallelTokenizerConfig) -> ParallelTokenizers:
        if config.joint:
            shared = _new_tokenizer(config).fit(list(texts.src) + list(texts.tgt))
            return cls(config, shared, shared)
        return cls(config, _new_tokenizer(config).fit(texts.src), _new_tokenizer(config).fit(texts.tgt))

    @property
    def bos_id(self) -> int:
        return self.tgt.vocab_size

    @property
    def eos_id(self) -> int:
        return self.tgt.vocab_size + 1

    @property
    def src_vocab_size(self) -> int:
        return self.src.vocab_size

    @property
    def tgt_vocab_size(self) -> int:
        """The target tokenizer's vocabulary plus bos and eos."""
        return self.tgt.vocab_size + 2

    @property
    def pad_id(self) -> int:
        return self.tgt.pad_id

    def decode(self, ids: Sequence[int]) -> str:
        """Target ids → text, dropping bos/eos/pad."""
        return self.tgt.decode([i for i in ids if i < self.tgt.vocab_size])

    def save(self, folder: PathLike) -> None:
        """One tokenizer in ``folder`` (joint), or ``folder/src`` and ``folder/tgt``."""
        folder = Path(folder)
        if self.config.joint:
            self.src.save(folder)
        else:
            self.src.save(folder / "src")
            self.tgt.save(folder / "tgt")

    @classmethod
    def load(cls, folder: PathLike, config: ParallelTokenizerConfig) -> ParallelTokenizers:
        folder = Path(folder)
        if config.joint:
            shared = load_tokenizer(folder)
            return cls(config, shared, shared)
        return cls(config, load_tokenizer(folder / "src"), load_tokenizer(folder / "tgt"))


def encode_pairs(tokenizers: ParallelTokenizers, texts: ParallelTexts, max_length: int | None = None,
                 ) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """Encode both sides; drop pairs where a side is empty or longer than ``max_length``.

    Returns (src ids, tgt ids, kept indices into ``texts``).
    """
    src = tokenizers.src.encode_batch(texts.src)
    tgt = tokenizers.tgt.encode_batch(texts.tgt)
    kept = [i for i, (s, t) in enumerate(zip(src, tgt, strict=True))
            if s and t and (max_length is None or (len(s) <= max_length and len(t) <= max_length))]
    return [src[i] for i in kept], [tgt[i] for i in kept], kept


def encode_sources(tokenizers: ParallelTokenizers, sentences: Sequence[str],
                   max_length: int | None = None) -> list[list[int]]:
    """Source ids for translation; longer than ``max_length`` is truncated with a warning.

    An empty sentence encodes to ``[]`` (batched as one pad token; it translates to
    whatever the model says for nothing).
    """
    ids = tokenizers.src.encode_batch(list(sentences))
    if max_length is not None:
        long = [i for i, s in enumerate(ids) if len(s) > max_length]
        if long:
            warnings.warn(f"{len(long)} source sentence(s) longer than the model's max_length "
                          f"{max_length} tokens were truncated (first: line {long[0] + 1})",
                          stacklevel=2)
            ids = [s[:max_length] for s in ids]
    return ids


# -- batches ------------------------------------------------------------------------------------


@dataclass
class ParallelBatch:
    """src (B, S) source ids, right-padded; src_lengths (B,); tgt_in (B, T) = bos + target;
    tgt_out (B, T) = target + eos; index (B,) positions in the encoded lists."""

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    index: torch.Tensor
    pad_id: int = 0

    def __len__(self) -> int:
        return int(self.src.shape[0])

    @property
    def num_tokens(self) -> int:
        """Real target tokens (eos included): the loss's items."""
        return int((self.tgt_out != self.pad_id).sum())


class ParallelBatcher:
    """Re-iterable batches of sentence pairs, bucketed by source length; one pass = one epoch.

    The batch plan (shuffle, buckets) is ``BucketBatcher``'s over the source sequences, so
    epoch ``e`` is the same every time it is asked for (seeded with ``[seed, e]``).
    ``tgt_ids`` may be None (translation: sources only).
    """

    def __init__(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]] | None,
                 *, bos_id: int, eos_id: int, pad_id: int = 0, batch_size: int = 64,
                 shuffle: bool = False, seed: int = 0, bucket: bool = True) -> None:
        if tgt_ids is not None and len(tgt_ids) != len(src_ids):
            raise ValueError(f"src_ids and tgt_ids must have the same length, got "
                             f"{len(src_ids)} and {len(tgt_ids)}")
        self.plan_of = BucketBatcher(src_ids, None, batch_size=batch_size, shuffle=shuffle,
                                     seed=seed, bucket=bucket, pad_id=pad_id)
        self.tgt = None if tgt_ids is None else [np.asarray(t, dtype=np.int64) for t in tgt_ids]
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.plan_of)

    def collate(self, positions: np.ndarray) -> ParallelBatch:
        source = self.plan_of.collate(positions)
        B = len(positions)
        if self.tgt is None:
            tgt_in = torch.full((B, 1), self.bos_id, dtype=torch.long)
            tgt_out = torch.full((B, 1), self.pad_id, dtype=torch.long)
        else:
            targets = [self.tgt[i] for i in positions]
            T = max(len(t) for t in targets) + 1
            tgt_in = np.full((B, T), self.pad_id, dtype=np.int64)
            tgt_out = np.full((B, T), self.pad_id, dtype=np.int64)
            for row, t in enumerate(targets):
                tgt_in[row, 0] = self.bos_id
                tgt_in[row, 1: len(t) + 1] = t
                tgt_out[row, : len(t)] = t
                tgt_out[row, len(t)] = self.eos_id
            tgt_in, tgt_out = torch.from_numpy(tgt_in), torch.from_numpy(tgt_out)
        return ParallelBatch(source.tokens, source.lengths, tgt_in, tgt_out, source.index,
                             self.pad_id)

    def batches(self, epoch: int):
        for positions in self.plan_of.plan(epoch):
            yield self.collate(positions)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self.batches(epoch)


def parallel_summary(texts: ParallelTexts, src_ids: list[list[int]],
                     tgt_ids: list[list[int]]) -> dict[str, Any]:
    """Counts for the training log: pairs kept, tokens per side, mean lengths."""
    return {"pairs": len(texts), "kept": len(src_ids),
            "src_tokens": sum(map(len, src_ids)), "tgt_tokens": sum(map(len, tgt_ids)),
            "mean_src_len": float(np.mean([len(s) for s in src_ids])) if src_ids else 0.0,
            "mean_tgt_len": float(np.mean([len(t) for t in tgt_ids])) if tgt_ids else 0.0}
