"""Readers for labelled text (sentiment and other many-to-one classification data).

Every reader returns a :class:`LabelledTexts` (``texts``, integer ``labels``,
``label_names``), so the tokenizer and the batcher never care where the data came from:

    >>> from recur.data import read_imdb, read_labelled, split_train_valid
    >>> data = read_imdb()                        # the shared train.jsonl.gz or aclImdb/
    >>> data = read_labelled("IMDB Dataset.csv")  # review,sentiment CSV (50k Kaggle copy)
    >>> train, valid = split_train_valid(data, valid_fraction=0.1, seed=0)

Formats: the ``aclImdb`` folder layout (``train/pos/*.txt``, ``train/neg/*.txt``, test
likewise), JSON Lines (optionally gzipped; a ``.json`` file holding one JSON array also
works) and CSV/TSV with a header row (optionally gzipped). :func:`read_labelled` picks
the reader from the path.

Choices made here, once, for every reader:

* **Encoding.** Files are decoded as strict UTF-8 (a leading BOM is ignored). A byte that
  is not UTF-8 is an error naming the file and line, never a silent replacement: a
  replaced character changes tokens without a trace, and a file in the wrong encoding is
  better re-encoded once (``iconv -f latin1 -t utf-8``) than guessed at on every read.
* **Labels.** A label is an int class id ``>= 0`` or a string. Strings are looked up,
  case-insensitively, in a label map (default: negative/neg -> 0, positive/pos -> 1);
  a string of digits such as ``"1"`` is that int. Anything else (an unknown word, a
  boolean, a float, null) is a ``ValueError`` naming the value, the file and the line.
* **Cleaning.** With ``clean=True`` (the default) each text goes through
  :func:`clean_text`: the ``<br />`` line breaks of IMDB reviews become spaces, as in the
  lecture notes' custom standardisation, and runs of whitespace collapse to one space.
* **Empty texts** (empty or whitespace-only) are kept, as ``""``, so that predictions
  still line up with the input rows. They tokenize to zero tokens; the batcher then feeds
  the model one padding token (length 1), see :mod:`recur.data.batching`.
* **Empty files** (no examples at all) are an error: training on nothing is a mistake.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike[str]

DEFAULT_LABEL_MAP: Mapping[str, int] = {"negative": 0, "neg": 0, "positive": 1, "pos": 1}
"""How string labels become class ids when no ``label_map`` is given."""

SENTIMENT_LABEL_NAMES: tuple[str, ...] = ("negative", "positive")
"""Class names of binary sentiment data (IMDB): 0 = negative, 1 = positive."""

# Column names recognised in a CSV/TSV header when the caller names none
# (the 50k IMDB CSV has ``review,sentiment``; SST-2 style files have ``sentence,label``).
TEXT_COLUMN_NAMES = ("review", "text", "sentence", "content", "comment", "document")
LABEL_COLUMN_NAMES = ("sentiment", "label", "labels", "polarity", "class", "target")

_BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with one integer class label each.

    Attributes:
        texts: the N texts (cleaned by the reader unless ``clean=False``).
        labels: N class ids, each in ``range(len(label_names))``.
        label_names: the name of each class id, e.g. ``["negative", "positive"]``.
    """

    texts: list[str]
    labels: list[int]
    label_names: list[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"texts and labels must have the same length, got {len(self.texts)} texts "
                f"and {len(self.labels)} labels"
            )
        bad = [label for label in self.labels if not 0 <= label < len(self.label_names)]
        if bad:
            raise ValueError(
                f"labels must be in range({len(self.label_names)}) for label_names "
                f"{self.label_names}, got {bad[0]!r}"
            )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def label_counts(self) -> list[int]:
        """Number of examples of each class id, ``[count of 0, count of 1, ...]``."""
        counts = [0] * len(self.label_names)
        for label in self.labels:
            counts[label] += 1
        return counts

    def subset(self, indices: Sequence[int]) -> LabelledTexts:
        """The examples at ``indices``, in that order."""
        return LabelledTexts(
            texts=[self.texts[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            label_names=list(self.label_names),
        )


def clean_text(text: str) -> str:
    """Replace ``<br />`` tags (any case, with or without the slash) by spaces, collapse
    every run of whitespace (Unicode whitespace included) to one space, and strip.

    Idempotent, so cleaning in the reader and again in the tokenizer is harmless.
    A whitespace-only text becomes ``""``.
    """
    # str.split() splits on exactly the characters regex \s matches (str.isspace).
    return " ".join(_BR_TAG.sub(" ", text).split())


# ----------------------------------------------------------------------------- labels


class _LabelParser:
    """Turns raw label values into class ids and, at the end, names the classes."""

    def __init__(
        self, label_map: Mapping[str, int] | None, label_names: Sequence[str] | None
    ) -> None:
        raw_map = DEFAULT_LABEL_MAP if label_map is None else label_map
        for key, value in raw_map.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(
                    f"label_map values must be class ids (ints >= 0), got {key!r}: {value!r}"
                )
        self.label_map = {str(key).strip().lower(): value for key, value in raw_map.items()}
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.used_map = False

    def parse(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(
                f"label {value!r} ({type(value).__name__}) at {where} is not a class id; "
                f"expected an int >= 0 or one of {sorted(self.label_map)}"
            )
        if isinstance(value, str):
            key = value.strip().lower()
            if key in self.label_map:
                self.used_map = True
                label = self.label_map[key]
            elif _DIGITS.fullmatch(key):
                label = int(key)
            else:
                raise ValueError(
                    f"unknown label {value!r} at {where}; expected an int >= 0 or one of "
                    f"{sorted(self.label_map)} (pass label_map= to map other values)"
                )
        else:
            label = value
        if label < 0:
            raise ValueError(f"label {value!r} at {where} is negative; class ids start at 0")
        if self.label_names is not None and label >= len(self.label_names):
            raise ValueError(
                f"label {value!r} at {where} is out of range for label_names "
                f"{self.label_names} ({len(self.label_names)} classes)"
            )
        return label

    def names(self, labels: Sequence[int]) -> list[str]:
        if self.label_names is not None:
            return list(self.label_names)
        num_classes = max(labels) + 1
        names = [str(i) for i in range(num_classes)]
        if self.used_map:
            for key, label in reversed(list(self.label_map.items())):  # first key wins
                if label < num_classes:
                    names[label] = key
        return names


def _finish(
    texts: list[str], labels: list[int], parser: _LabelParser, source: Path
) -> LabelledTexts:
    if not texts:
        raise ValueError(f"no labelled examples found in {source}")
    return LabelledTexts(texts=texts, labels=labels, label_names=parser.names(labels))


# ----------------------------------------------------------------------------- bytes


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic number."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return raw


def _decode(raw: bytes, path: Path, first_line: int = 1) -> str:
    """Strict UTF-8 (BOM dropped); a bad byte is an error naming the file and line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = first_line + raw.count(b"\n", 0, err.start)
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ValueError(
            f"{path}, line {line}, column {column}: byte 0x{raw[err.start]:02x} is not valid "
            "UTF-8; recur reads text files as strict UTF-8 (re-encode the file, e.g. "
            "`iconv -f latin1 -t utf-8`)"
        ) from err


def _as_path(path: PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return path


# ----------------------------------------------------------------------------- readers


def read_aclimdb(
    folder: PathLike,
    split: str = "train",
    *,
    clean: bool = True,
) -> LabelledTexts:
    """Read the aclImdb layout: ``<folder>/<split>/{neg,pos}/<id>_<rating>.txt``.

    Args:
        folder: the ``aclImdb`` folder, or a split folder that holds ``pos/`` and ``neg/``
            directly.
        split: ``"train"`` or ``"test"`` (any sub-folder name is accepted).
        clean: apply :func:`clean_text` to every review.

    Returns:
        Negatives first, then positives, each ordered by review id (as in the shared
        ``train.jsonl.gz``); labels 0 = negative, 1 = positive. ``unsup/`` is ignored.
    """
    folder = _as_path(folder, "aclImdb folder")
    split_dir = folder / split
    if not (split_dir / "pos").is_dir() and (folder / "pos").is_dir():
        split_dir = folder
    missing = [name for name in ("neg", "pos") if not (split_dir / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not in the aclImdb layout: expected {split_dir}/neg and "
            f"{split_dir}/pos, missing {', '.join(missing)}"
        )

    def review_id(path: Path) -> tuple[int, str]:
        head = path.stem.split("_", 1)[0]
        return (int(head), path.name) if head.isdigit() else (-1, path.name)

    texts: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(("neg", "pos")):
        for path in sorted((split_dir / name).glob("*.txt"), key=review_id):
            text = _decode(path.read_bytes(), path)
            texts.append(clean_text(text) if clean else text)
            labels.append(label)
    if not texts:
        raise ValueError(f"no reviews (*.txt files) found under {split_dir}/neg and /pos")
    return LabelledTexts(texts, labels, list(SENTIMENT_LABEL_NAMES))


def read_jsonl(
    path: PathLike,
    text_key: str = "text",
    label_key: str = "label",
    *,
    clean: bool = True,
    label_map: Mapping[str, int] | None = None,
    label_names: Sequence[str] | None = None,
) -> LabelledTexts:
    """Read JSON Lines, one ``{"text": ..., "label": ...}`` object per line.

    Gzipped files are recognised by their content, whatever the name. Blank lines are
    skipped. A file whose first character is ``[`` is read as one JSON array of such
    objects (errors then name the record number instead of the line).

    Args:
        path: the ``.jsonl``, ``.jsonl.gz`` or ``.json`` file.
        text_key, label_key: the keys of the text and the label in each object.
        clean: apply :func:`clean_text` to every text.
        label_map: string label -> class id (default :data:`DEFAULT_LABEL_MAP`).
        label_names: names of the class ids; also bounds them (an id ``>= len`` is an
            error). Default: ``["negative", "positive"]`` when the default map was used,
            else ``str(id)``.
    """
    path = _as_path(path, "JSON Lines file")
    parser = _LabelParser(label_map, label_names)
    raw = _read_bytes(path)
    texts: list[str] = []
    labels: list[int] = []

    def add(record: Any, where: str) -> None:
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for key in (text_key, label_key):
            if key not in record:
                raise ValueError(
                    f"{where}: no key {key!r}; the record has keys {sorted(record)} "
                    "(pass text_key= / label_key=)"
                )
        text = record[text_key]
        if not isinstance(text, str):
            raise ValueError(f"{where}: {text_key!r} must be a string, got {text!r}")
        labels.append(parser.parse(record[label_key], where))
        texts.append(clean_text(text) if clean else text)

    if raw.lstrip()[:1] == b"[":
        try:
            records = json.loads(_decode(raw, path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from err
        for number, record in enumerate(records, start=1):
            add(record, f"{path}, record {number}")
        return _finish(texts, labels, parser, path)

    for lineno, raw_line in enumerate(raw.split(b"\n"), start=1):
        line = _decode(raw_line, path, first_line=lineno)
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: invalid JSON ({err.msg})") from err
        add(record, where)
    return _finish(texts, labels, parser, path)


def _resolve_column(
    header: list[str], wanted: str | int | None, candidates: Sequence[str], role: str, path: Path
) -> int:
    lowered = [name.strip().lower() for name in header]
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        if not 0 <= wanted < len(header):
            raise ValueError(f"{role}={wanted} is out of range for {path} ({len(header)} columns)")
        return wanted
    names = candidates if wanted is None else (str(wanted),)
    for name in names:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    if wanted is None:
        raise ValueError(
            f"{path}: cannot find the {role.removesuffix('_column')} column in header {header}; "
            f"looked for {list(candidates)} (pass {role}=)"
        )
    raise ValueError(f"{path}: {role}={wanted!r} is not in the header {header}")


def read_csv(
    path: PathLike,
    text_column: str | int | None = None,
    label_column: str | int | None = None,
    delimiter: str | None = None,
    *,
    clean: bool = True,
    label_map: Mapping[str, int] | None = None,
    label_names: Sequence[str] | None = None,
) -> LabelledTexts:
    """Read a CSV or TSV file with a header row (optionally gzipped).

    Args:
        path: the ``.csv``, ``.tsv``, ``.csv.gz`` or ``.tsv.gz`` file.
        text_column, label_column: header names (case-insensitive) or 0-based column
            indices. By default the first header name found in :data:`TEXT_COLUMN_NAMES`
            / :data:`LABEL_COLUMN_NAMES` is used, which finds ``review,sentiment`` of the
            common 50k IMDB CSV.
        delimiter: default ``"\\t"`` for ``.tsv`` names, else ``","``.
        clean, label_map, label_names: as in :func:`read_jsonl`; the default label map
            reads that CSV's ``positive``/``negative``.
    """
    path = _as_path(path, "CSV file")
    if delimiter is None:
        delimiter = "\t" if ".tsv" in path.suffixes else ","
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be a single character, got {delimiter!r}")
    parser = _LabelParser(label_map, label_names)
    text = _decode(_read_bytes(path), path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"no labelled examples found in {path} (the file is empty)") from None
    except csv.Error as err:
        raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({err})") from err
    text_index = _resolve_column(header, text_column, TEXT_COLUMN_NAMES, "text_column", path)
    label_index = _resolve_column(header, label_column, LABEL_COLUMN_NAMES, "label_column", path)

    texts: list[str] = []
    labels: list[int] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({err})") from err
        where = f"{path}, line {reader.line_num}"
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            raise ValueError(
                f"{where}: expected {len(header)} fields as in the header, got {len(row)}"
            )
        labels.append(parser.parse(row[label_index], where))
        texts.append(clean_text(row[text_index]) if clean else row[text_index])
    return _finish(texts, labels, parser, path)


def read_labelled(
    path: PathLike,
    *,
    clean: bool = True,
    label_map: Mapping[str, int] | None = None,
    label_names: Sequence[str] | None = None,
) -> LabelledTexts:
    """Read labelled texts, choosing the reader from the path.

    A folder is read as aclImdb (train split, or the folder itself if it holds
    ``pos/``/``neg/``); ``.jsonl``, ``.ndjson``, ``.json`` (each optionally ``.gz``) as JSON
    Lines; ``.csv``/``.tsv`` (optionally ``.gz``) as CSV with a header. For the
    format-specific options (keys, columns, split) call the reader itself.
    """
    path = _as_path(path, "dataset path")
    if path.is_dir():
        return read_aclimdb(path, clean=clean)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in (".jsonl", ".ndjson", ".json"):
        return read_jsonl(path, clean=clean, label_map=label_map, label_names=label_names)
    if kind in (".csv", ".tsv"):
        return read_csv(path, clean=clean, label_map=label_map, label_names=label_names)
    raise ValueError(
        f"cannot tell the format of {path} from its name; expected an aclImdb folder, "
        ".jsonl/.json(.gz) or .csv/.tsv(.gz)"
    )


def read_imdb(root: PathLike | None = None, split: str = "train") -> LabelledTexts:
    """Read the IMDB reviews from ``<data root>/imdb`` (see :mod:`recur.data.paths`).

    Uses ``<split>.jsonl.gz`` (the project's shared copy, train only) if present, else an
    extracted ``aclImdb/`` folder (what :func:`recur.data.download.download_dataset`
    creates). Labels: 0 = negative, 1 = positive. The shared file is sorted by label,
    so shuffle (or use :func:`split_train_valid` and a shuffling batcher).
    """
    from recur.data.paths import dataset_folders

    folders = dataset_folders("imdb", root)
    if not folders:
        raise FileNotFoundError(
            "no imdb dataset folder found (looked in the explicit root, $RECUR_DATA, "
            "../shared/datasets and ~/.cache/recur/datasets); set RECUR_DATA or fetch it "
            "with recur.data.download_dataset('imdb')"
        )
    for folder in folders:  # the first folder that has this split wins
        jsonl = folder / f"{split}.jsonl.gz"
        if jsonl.is_file():
            return read_jsonl(jsonl, label_names=SENTIMENT_LABEL_NAMES)
        acl = folder / "aclImdb"
        if (acl / split).is_dir():
            return read_aclimdb(acl, split)
    raise FileNotFoundError(
        f"no IMDB {split!r} split in {[str(f) for f in folders]}: looked for "
        f"{split}.jsonl.gz and aclImdb/{split}/ (the shared copy holds only the train "
        "split; the official test split is held out)"
    )


def split_train_valid(
    data: LabelledTexts, valid_fraction: float = 0.1, seed: int = 0
) -> tuple[LabelledTexts, LabelledTexts]:
    """Carve a stratified validation set out of ``data``.

    Each class keeps its share: ``round(n_c * valid_fraction)`` of its ``n_c`` examples go
    to validation, at least one and at most ``n_c - 1`` when ``n_c >= 2`` (a class with a
    single example stays in training). Both parts are returned in a shuffled order. The
    result depends only on ``data``, ``valid_fraction`` and ``seed`` (NumPy's PCG64), so
    the same call gives the same split on every machine.

    Returns:
        ``(train, valid)``, disjoint, together holding every example exactly once.
    """
    if not isinstance(valid_fraction, float | int) or not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
    if len(data) < 2:
        raise ValueError(f"need at least 2 examples to split, got {len(data)}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    train_index: list[int] = []
    valid_index: list[int] = []
    for label in range(data.num_classes):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        n_valid = round(len(members) * valid_fraction)
        if len(members) >= 2:
            n_valid = min(max(n_valid, 1), len(members) - 1)
        else:
            n_valid = 0
        valid_index += members[:n_valid].tolist()
        train_index += members[n_valid:].tolist()
    train_order = rng.permutation(len(train_index))
    valid_order = rng.permutation(len(valid_index))
    return (
        data.subset([train_index[i] for i in train_order]),
        data.subset([valid_index[i] for i in valid_order]),
    )
