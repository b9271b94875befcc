"""Token streams for language models: character / word / subword codecs and TBPTT windows.

A language model reads one long token stream. ``TextCodec`` turns text into that stream
and back, at one of three levels:

* ``char`` — every Unicode character is a token (vocabulary: the training text's
  characters, sorted). A prompt character the model never saw is an error.
* ``word`` — whitespace-separated words, case and punctuation kept (PTB is already
  tokenised and lower-cased), with an end-of-sentence token ``<eos>`` after every line;
  PTB's ``<unk>`` is an ordinary word. An unknown prompt word becomes ``<unk>`` (when the
  vocabulary has it, else ``[UNK]``) with a warning.
* ``bpe`` — Hugging Face BPE trained on the training text (``SubwordTokenizer``), with
  ``<eos>`` after every line.

``<eos>`` is one id past the tokenizer's own (id ``tokenizer.vocab_size``), so the word
and subword vocabularies stay the shared tokenizers' unchanged; decoding turns it back into
a line break.

``StreamBatches`` cuts the stream into B parallel rows and windows of k steps for truncated
BPTT (the layout is drawn in ``recur.training.tbptt``); with ``keep_tail`` it adds the
``(N - 1) mod B`` tokens that do not fill a row as a last one-row window that continues
row B - 1, so an evaluation covers every token exactly once::

    stream  a b c d e f g h i j k l m n     N = 14, B = 3, k = 2: rows of 13 // 3 = 4 steps
    row 0   a b ‖ c d                       inputs;   targets are shifted one ahead
    row 1   e f ‖ g h
    row 2   i j ‖ k l ‖ m                   tail: the last input m (target n) continues row 2
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from recur.cells.base import check_choice, check_positive_int
from recur.data.vocab import (
    HEADER_FILE,
    SubwordTokenizer,
    WordTokenizer,
    _write_atomic,
    load_tokenizer,
)
from recur.training.tbptt import stream_windows

LEVELS = ("char", "word", "bpe")
EOS = "<eos>"
CHAR_VOCAB_FILE = "char_vocab.json"


class Window(NamedTuple):
    """One TBPTT window.

    inputs, targets: (B, k) token ids; targets are the inputs shifted one token ahead.
    row: None for an ordinary window (row b continues row b of the previous window); an
        int r for the one-row tail window, which continues row r of the previous window.
    """

    inputs: Tensor
    targets: Tensor
    row: int | None = None


class StreamBatches:
    """The windows of one pass over a token stream (sized, so schedules can count steps).

    Args:
        ids: (N,) token ids.
        batch_size: B parallel rows.
        window: k time steps per window.
        offset: skip this many tokens first (vary window edges from epoch to epoch).
        keep_tail: add the leftover tokens as a final one-row window (see module docs).
    """

    def __init__(self, ids: Tensor, batch_size: int, window: int, offset: int = 0,
                 keep_tail: bool = False) -> None:
        check_positive_int("batch_size", batch_size)
        check_positive_int("window", window)
        if offset < 0 or offset >= max(len(ids) - batch_size, 1):
            raise ValueError(f"offset must be in [0, {len(ids) - batch_size}), got {offset}")
        self.ids, self.batch_size, self.window = ids[offset:], batch_size, window
        self.keep_tail = keep_tail
        steps = (len(self.ids) - 1) // batch_size
        if steps < 1:
            raise ValueError(f"the stream must hold at least batch_size + 1 = {batch_size + 1} "
                             f"tokens, got {len(self.ids)}")
        self.steps = steps
        self.tail = len(self.ids) - 1 - batch_size * steps  # inputs left over
        self.num_targets = batch_size * steps + (self.tail if keep_tail else 0)

    def __len__(self) -> int:
        return -(-self.steps // self.window) + (1 if self.keep_tail and self.tail else 0)

    def __iter__(self) -> Iterator[Window]:
        for inputs, targets in stream_windows(self.ids, self.batch_size, self.window):
            yield Window(inputs, targets)
        if self.keep_tail and self.tail:
            start = self.batch_size * self.steps
            for s in range(start, start + self.tail, self.window):  # one row, k at a time
                end = min(s + self.window, start + self.tail)
                yield Window(self.ids[s:end].unsqueeze(0), self.ids[s + 1:end + 1].unsqueeze(0),
                             row=self.batch_size - 1 if s == start else 0)


# -- text <-> stream ----------------------------------------------------------------------------


class CharVocab:
    """Characters of the training text, sorted by code point; id = position."""

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        if not chars or len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters, at least one")
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def fit(cls, text: str) -> CharVocab:
        if not text:
            raise ValueError("cannot build a character vocabulary from empty text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def save(self, folder: str | Path) -> None:
        _write_atomic(Path(folder) / CHAR_VOCAB_FILE,
                      json.dumps({"format": "recur-char-vocab", "version": 1,
                                  "chars": self.chars}, ensure_ascii=True) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> CharVocab:
        path = Path(folder) / CHAR_VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != "recur-char-vocab":
            raise ValueError(f"{path} is not a recur character vocabulary")
        return cls(data["chars"])


class TextCodec:
    """Text ⇄ token ids for a language model, at the ``char``, ``word`` or ``bpe`` level.

    Build with ``TextCodec.fit(level, text, ...)``; ``encode_stream(text)`` gives the (N,)
    training stream, ``encode_prompt(text)`` the ids of a prompt (checked, see the module
    docs), ``decode(ids)`` text.
    """

    def __init__(self, level: str, tokenizer: CharVocab | WordTokenizer | SubwordTokenizer):
        check_choice("level", level, LEVELS)
        self.level, self.tokenizer = level, tokenizer

    @classmethod
    def fit(cls, level: str, text: str, max_tokens: int | None = None,
            min_freq: int = 1) -> TextCodec:
        """Learn the vocabulary of ``level`` from the training ``text``."""
        check_choice("level", level, LEVELS)
        if level == "char":
            return cls(level, CharVocab.fit(text))
        lines = text.splitlines()
        if level == "word":
            max_tokens = None if max_tokens is None else max_tokens - 1  # room for <eos>
            tok = WordTokenizer(max_tokens=max_tokens, min_freq=min_freq, standardize=None,
                                strip_html=False)
        else:
            tok = SubwordTokenizer(kind="bpe", vocab_size=(max_tokens or 8000) - 1,
                                   min_freq=max(min_freq, 2), lowercase=False, strip_html=False)
        return cls(level, tok.fit(lines))

    @property
    def vocab_size(self) -> int:
        """V: the tokenizer's ids, plus ``<eos>`` at word and subword level."""
        return self.tokenizer.vocab_size + (0 if self.level == "char" else 1)

    @property
    def eos_id(self) -> int | None:
        return None if self.level == "char" else self.tokenizer.vocab_size

    @property
    def newline_id(self) -> int | None:
        """The token that ends a line: ``<eos>``, or the character "\\n" if it is known."""
        if self.level == "char":
            return self.tokenizer.index.get("\n")
        return self.eos_id

    def encode_stream(self, text: str) -> Tensor:
        """The whole text as one (N,) int64 stream (``<eos>`` after each line)."""
        if self.level == "char":
            index = self.tokenizer.index
            missing = sorted(set(text) - set(index))
            if missing:  # held-out text may hold a character training text did not
                raise ValueError(f"text holds characters outside the vocabulary: "
                                 f"{''.join(missing)[:20]!r}")
            return torch.tensor([index[c] for c in text], dtype=torch.long)
        eos = self.eos_id
        ids: list[int] = []
        for line_ids in self.tokenizer.encode_batch(text.splitlines()):
            ids.extend(line_ids)
            ids.append(eos)
        return torch.tensor(ids, dtype=torch.long)

    def encode_prompt(self, text: str) -> list[int]:
        """A prompt's ids: no ``<eos>`` after its last line (the model continues it)."""
        if self.level == "char":
            missing = sorted(set(text) - set(self.tokenizer.index))
            if missing:
                raise ValueError(f"prompt holds characters this model never saw: "
                                 f"{''.join(missing)!r}; its vocabulary is "
                                 f"{''.join(self.tokenizer.chars)!r}")
            return [self.tokenizer.index[c] for c in text]
        lines = text.split("\n")
        ids: list[int] = []
        for n, line in enumerate(lines):
            if self.level == "word":
                unknown = [w for w in line.split() if self.tokenizer.token_to_id(w)
                           == self.tokenizer.unk_id]
                if unknown:
                    warnings.warn(f"prompt words outside the vocabulary, read as "
                                  f"{self.unknown_word!r}: {' '.join(unknown)}", stacklevel=2)
                unk = self.tokenizer.token_to_id(self.unknown_word)
                ids += [unk if i == self.tokenizer.unk_id else i
                        for i in self.tokenizer.encode(line)]
            else:
                ids += self.tokenizer.encode(line)
            if n < len(lines) - 1:
                ids.append(self.eos_id)
        return ids

    @property
    def unknown_word(self) -> str:
        """PTB's ``<unk>`` if the vocabulary has it, else the tokenizer's ``[UNK]``."""
        tok = self.tokenizer
        return "<unk>" if tok.token_to_id("<unk>") != tok.unk_id else "[UNK]"

    def token_text(self, index: int) -> str:
        """One token as text (``<eos>`` as itself)."""
        if self.level == "char":
            return self.tokenizer.chars[index]
        if index == self.eos_id:
            return EOS
        return self.tokenizer.id_to_token(index)

    def decode(self, ids: Sequence[int]) -> str:
        """Ids → text; ``<eos>`` becomes a line break."""
        ids = [int(i) for i in ids]
        if self.level == "char":
            return "".join(self.tokenizer.chars[i] for i in ids)
        lines, current = [], []
        for i in ids:
            if i == self.eos_id:
                lines.append(current)
                current = []
            else:
                current.append(i)
        lines.append(current)
        return "\n".join(self.tokenizer.decode(line) if line else "" for line in lines)

    def save(self, folder: str | Path) -> None:
        self.tokenizer.save(folder)

    @classmethod
    def load(cls, level: str, folder: str | Path) -> TextCodec:
        check_choice("level", level, LEVELS)
        if level == "char":
            return cls(level, CharVocab.load(folder))
        if not (Path(folder) / HEADER_FILE).is_file():
            raise FileNotFoundError(f"no tokenizer files in {folder}")
        return cls(level, load_tokenizer(folder))
