"""CoNLL column files (CoNLL-2003 NER): read sentences and tags, write predictions.

The format: one token per line, whitespace-separated columns (CoNLL-2003 English:
``token POS chunk NER``), a blank line between sentences, ``-DOCSTART-`` lines between
documents, optionally gzip-compressed (``.gz`` is read transparently)::

    -DOCSTART- -X- O O

    EU NNP I-NP I-ORG
    rejects VBZ I-VP O

    >>> corpus = read_conll("eng.train.gz", scheme="iob2")   # IOB1 in the file -> IOB2
    >>> corpus.sentences[0].tokens, corpus.sentences[0].tags
    (['EU', 'rejects', ...], ['B-ORG', 'O', ...])
    >>> write_conll("out.txt", corpus.sentences, predicted_tags)   # columns + prediction

The tag column is selectable (default: the last); its tags are checked (``O`` or
``B/I/E/S-TYPE``) and converted to the requested scheme through their spans
(``recur.data.spans``), so IOB1 -> IOB2 / BIOES keeps every entity. A line whose column
count differs from the file's first token line is an error naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from recur.crf import SCHEMES, split_tag
from recur.data.spans import convert_tags

DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Sentence:
    """One sentence: its rows of columns, the selected tag column (converted), provenance.

    Attributes:
        rows: the file's columns, one tuple per token (the token is column 0).
        tags: the tag column in the requested scheme ([] when the file has no tags).
        line: 1-based line number of the sentence's first token.
        doc_start: True if a ``-DOCSTART-`` line came right before the sentence.
    """

    rows: tuple[tuple[str, ...], ...]
    tags: tuple[str, ...]
    line: int
    doc_start: bool = False

    @property
    def tokens(self) -> list[str]:
        return [row[0] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Corpus:
    """What ``read_conll`` returns: the sentences, the tag scheme and the source path."""

    sentences: list[Sentence]
    scheme: str
    path: str

    def tags(self) -> list[list[str]]:
        return [list(s.tags) for s in self.sentences]

    def tokens(self) -> list[list[str]]:
        return [s.tokens for s in self.sentences]

    def __len__(self) -> int:
        return len(self.sentences)


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """Open a text file for reading, gunzipping ``.gz`` files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoNLL file {path} does not exist")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def read_conll(
    path: str | os.PathLike, tag_column: int | None = -1, scheme: str = "iob2"
) -> Corpus:
    """Read a CoNLL column file into sentences with tags in ``scheme``.

    Args:
        path: the file (``.gz`` allowed).
        tag_column: index of the tag column (negative counts from the end; default the
            last); None for untagged files (token per line, tags empty).
        scheme: ``iob1``, ``iob2`` or ``bioes``; the file's tags (in any of the three:
            spans are read with conlleval's rules) are converted to it.

    Raises:
        FileNotFoundError; ValueError naming ``path:line`` for a wrong column count, a
        missing tag column or a malformed tag.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    sentences: list[Sentence] = []
    rows: list[tuple[str, ...]] = []
    first_line, doc_start, width = 0, False, None

    def flush() -> None:
        nonlocal rows, doc_start
        if rows:
            tags: list[str] = []
            if tag_column is not None:
                tags = convert_tags([r[tag_column] for r in rows], scheme)
            sentences.append(Sentence(tuple(rows), tuple(tags), first_line, doc_start))
            doc_start = False
        rows = []

    with open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                columns = tuple(line.split())
                if not columns:
                    flush()
                    continue
                if columns[0] == DOCSTART:
                    flush()
                    doc_start = True
                    continue
                if width is None:
                    width = len(columns)
                    if tag_column is not None and not -width <= tag_column < width:
                        raise ValueError(f"{path}:{number}: tag_column {tag_column} does not "
                                         f"exist: the file has {width} columns")
                if len(columns) != width:
                    raise ValueError(f"{path}:{number}: expected {width} columns like the "
                                     f"file's first token line, got {len(columns)}: "
                                     f"{line.rstrip()!r}")
                if tag_column is not None:
                    tag = columns[tag_column]
                    try:
                        split_tag(tag)
                    except ValueError:
                        raise ValueError(f"{path}:{number}: malformed tag {tag!r} in column "
                                         f"{tag_column} (expected O or B/I/E/S-TYPE)") from None
                if not rows:
                    first_line = number
                rows.append(columns)
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as err:
            raise ValueError(f"{path} is not a readable UTF-8 CoNLL file: {err}") from err
    flush()
    return Corpus(sentences, scheme, str(path))


def format_conll(sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]]) -> str:
    """CoNLL text: each sentence's columns plus the predicted tag as a new last column.

    ``-DOCSTART-`` lines are written back where the input had them, so the output can be
    scored by conlleval (``... gold predicted`` columns).
    """
    if len(sentences) != len(predicted):
        raise ValueError(f"predicted must hold one tag list per sentence ({len(sentences)}), "
                         f"got {len(predicted)}")
    lines: list[str] = []
    for i, (sentence, tags) in enumerate(zip(sentences, predicted, strict=True)):
        if len(tags) != len(sentence):
            raise ValueError(f"sentence {i} (line {sentence.line}) has {len(sentence)} tokens "
                             f"but {len(tags)} predicted tags")
        if sentence.doc_start:
            width = len(sentence.rows[0])
            filler = ["-X-"] + ["O"] * (width - 2) if width >= 2 else []
            lines += [" ".join([DOCSTART, *filler, "O"]), ""]
        lines += [" ".join([*row, tag]) for row, tag in zip(sentence.rows, tags, strict=True)]
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def write_conll(path: str | os.PathLike, sentences: Sequence[Sentence],
                predicted: Sequence[Sequence[str]]) -> Path:
    """Write ``format_conll`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    text = format_conll(sentences, predicted)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
