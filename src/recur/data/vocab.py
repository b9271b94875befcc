"""Tokenizers and vocabularies: a Keras-equivalent word vocabulary and HF subword models.

Two tokenizers share one small interface (:class:`Tokenizer`): ``fit(texts)``,
``encode(text) -> list[int]``, ``encode_batch``, ``decode(ids)``, ``vocab_size``,
``pad_id`` (always 0), ``unk_id`` (always 1) and ``save(folder)``;
:func:`load_tokenizer` reads any of them back.

    >>> from recur.data import WordTokenizer, load_tokenizer
    >>> tok = WordTokenizer(max_tokens=20_000).fit(train.texts)
    >>> tok.encode("A great movie!")          # three ids, one per word
    >>> tok.save("checkpoints/run1")          # vocab.json + tokenizer_config.json
    >>> tok = load_tokenizer("checkpoints/run1")

**WordTokenizer** does what ``keras.layers.TextVectorization`` does with its defaults
(``standardize="lower_and_strip_punctuation"``, ``split="whitespace"``,
``output_mode="int"``), checked against Keras 3's source:

* standardise: ``tf.strings.lower`` (which lower-cases **ASCII letters only**: "É" stays
  "É"), then delete the 32 ASCII punctuation characters of ``string.punctuation``
  (Keras's regex ``[!"#$%&()\\*\\+,-\\./:;<=>?@\\[\\\\\\]^_`{|}~\\']``; "don't" -> "dont");
* split on runs of ASCII whitespace (space, \\t, \\n, \\v, \\f, \\r), as
  ``tf.strings.split`` does; a no-break space does not split;
* index 0 is the padding/mask token ``""`` and index 1 the OOV token ``"[UNK]"``, and
  ``max_tokens`` counts both, so ``max_tokens=1000`` gives ``vocab_size == 1000``
  (998 learned words) once the corpus has that many distinct words;
* learned words are ordered by count, descending, ties broken by the word in
  **descending** code-point order (Keras sorts ``np.lexsort((tokens, counts))[::-1]``),
  so the order is deterministic and independent of the order of the texts;
* ``output_sequence_length`` pads with 0 on the right or keeps the first tokens.

recur adds two options, off in the Keras-equivalent setting: ``min_freq`` (drop words seen
fewer times) and ``strip_html`` (on by default: run :func:`recur.data.text.clean_text`
first, so ``<br />`` does not become the word "br", as in the lecture notes'
``custom_standardization``; it also turns Unicode whitespace such as a no-break space
into a split). The tokenizer carries its whole preprocessing, so a saved
model encodes raw input exactly as it was trained.

**SubwordTokenizer** trains a BPE (Sennrich et al., 2016, "Neural Machine Translation of
Rare Words with Subword Units", with the ``</w>`` end-of-word suffix of §3.2) or WordPiece
(Schuster & Nakajima, 2012; the ``##`` continuation form of BERT) model with Hugging Face
``tokenizers`` on the training texts: NFKC + optional lower-casing, then
``\\w+|[^\\w\\s]+`` pre-tokenisation. Specials: ``[PAD]`` = 0, ``[UNK]`` = 1.

**Saved form.** ``save(folder)`` writes the tokenizer's own file (``vocab.json`` for the
word vocabulary, Hugging Face's ``tokenizer.json`` for subwords) and then a small header,
``tokenizer_config.json``: ``{"format": "recur-tokenizer", "version": 1, "kind": ...}``.
Everything is JSON; nothing is ever unpickled. Files are written atomically (temporary
file + rename), the header last, so a folder with a header holds a complete tokenizer.
"""

from __future__ import annotations

import json
import operator
import os
import re
import string
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from recur.data.text import clean_text

PathLike = str | os.PathLike[str]

PAD_TOKEN = ""
"""Keras's mask token, index 0 of the word vocabulary."""
OOV_TOKEN = "[UNK]"
"""Keras's OOV token, index 1 of the word vocabulary (and of the subword ones)."""
SUBWORD_PAD_TOKEN = "[PAD]"

HEADER_FILE = "tokenizer_config.json"
VOCAB_FILE = "vocab.json"
HF_TOKENIZER_FILE = "tokenizer.json"
HEADER_FORMAT = "recur-tokenizer"
HEADER_VERSION = 1

STANDARDIZE_MODES = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
SUBWORD_KINDS = ("bpe", "wordpiece")
PRETOKENIZERS = ("whitespace", "metaspace")

# tf.strings.lower with its default encoding="" is absl::AsciiStrToLower: A-Z only.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# Keras's DEFAULT_STRIP_REGEX is exactly the 32 characters of string.punctuation.
_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_BOTH = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
_TRANSLATIONS = {
    "lower_and_strip_punctuation": _BOTH,
    "lower": _ASCII_LOWER,
    "strip_punctuation": _STRIP_PUNCTUATION,
}
# tf.strings.split(sep=None) splits on absl::ascii_isspace characters only.
_ASCII_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")


def keras_standardize(text: str, mode: str | None = "lower_and_strip_punctuation") -> str:
    """Keras TextVectorization's ``standardize`` step for the built-in modes."""
    if mode is None:
        return text
    if mode not in _TRANSLATIONS:
        raise ValueError(f"standardize must be one of {STANDARDIZE_MODES}, got {mode!r}")
    return text.translate(_TRANSLATIONS[mode])


def keras_split(text: str) -> list[str]:
    """Keras's ``split="whitespace"``: runs of ASCII whitespace, no empty tokens."""
    return [token for token in _ASCII_WHITESPACE.split(text) if token]


class Tokenizer(Protocol):
    """What the batcher, the trainer and ``predict`` need from a tokenizer.

    A typing protocol (not ``runtime_checkable``: checking it would read ``vocab_size``
    of an unfitted tokenizer, which raises).
    """

    kind: str

    def fit(self, texts: Iterable[str]) -> Tokenizer: ...

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def pad_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...

    def save(self, folder: PathLike) -> Path: ...


# ----------------------------------------------------------------------------- files


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_header(folder: Path, kind: str, file: str, config: dict[str, Any] | None) -> None:
    header: dict[str, Any] = {
        "format": HEADER_FORMAT,
        "version": HEADER_VERSION,
        "kind": kind,
        "file": file,
    }
    if config is not None:
        header["config"] = config
    _write_atomic(folder / HEADER_FILE, json.dumps(header, indent=2) + "\n")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid UTF-8 JSON ({err})") from err


def _config_from_dict(cls: type, data: Any, source: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: config must be a JSON object, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown config keys {unknown}; known: {sorted(known)}")
    return cls(**data)


def _as_ids(ids: Iterable[Any], vocab_size: int) -> list[int]:
    """Plain ints from ``ids`` (lists, NumPy or torch integers), each checked in range."""
    checked = []
    for i in ids:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise ValueError(f"token ids must be ints in range({vocab_size}), got {i!r}")
        value = operator.index(i)
        if not 0 <= value < vocab_size:
            raise ValueError(f"token ids must be ints in range({vocab_size}), got {value}")
        checked.append(value)
    return checked


def _check_positive(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


# ----------------------------------------------------------------------------- word level


@dataclass(frozen=True)
class WordTokenizerConfig:
    """Settings of :class:`WordTokenizer` (saved in ``vocab.json``).

    Attributes:
        max_tokens: vocabulary size cap **including** pad and OOV (Keras semantics);
            ``None`` keeps every word. At least 2.
        min_freq: drop words seen fewer than this many times (1 keeps all, as Keras).
        output_sequence_length: if set, ``encode`` pads with 0 / keeps the first tokens
            to exactly this length (Keras parity; recur's batcher wants ``None`` and
            truncates with :func:`recur.data.batching.encode_and_truncate` instead, so
            that true lengths are known).
        standardize: ``"lower_and_strip_punctuation"`` (Keras default), ``"lower"``,
            ``"strip_punctuation"`` or ``None``.
        strip_html: run :func:`recur.data.text.clean_text` first (``<br />`` -> space).
            ``False`` gives exactly Keras's behaviour.
    """

    max_tokens: int | None = None
    min_freq: int = 1
    output_sequence_length: int | None = None
    standardize: str | None = "lower_and_strip_punctuation"
    strip_html: bool = True

    def __post_init__(self) -> None:
        if self.max_tokens is not None:
            _check_positive("max_tokens", self.max_tokens, 2)
        _check_positive("min_freq", self.min_freq, 1)
        if self.output_sequence_length is not None:
            _check_positive("output_sequence_length", self.output_sequence_length, 1)
        if self.standardize not in STANDARDIZE_MODES:
            raise ValueError(
                f"standardize must be one of {STANDARDIZE_MODES}, got {self.standardize!r}"
            )
        if not isinstance(self.strip_html, bool):
            raise ValueError(f"strip_html must be a bool, got {self.strip_html!r}")


class WordTokenizer:
    """Word-level tokenizer with a Keras TextVectorization-equivalent vocabulary.

    Index 0 is padding (``""``), index 1 is OOV (``"[UNK]"``), then the learned words by
    descending count (ties: descending code points, as Keras). See the module docstring.
    """

    kind = "word"

    def __init__(
        self,
        max_tokens: int | None = None,
        min_freq: int = 1,
        output_sequence_length: int | None = None,
        standardize: str | None = "lower_and_strip_punctuation",
        strip_html: bool = True,
    ) -> None:
        self.config = WordTokenizerConfig(
            max_tokens=max_tokens,
            min_freq=min_freq,
            output_sequence_length=output_sequence_length,
            standardize=standardize,
            strip_html=strip_html,
        )
        self._vocabulary: list[str] | None = None
        self._index: dict[str, int] = {}

    def __repr__(self) -> str:
        size = "unfitted" if self._vocabulary is None else f"vocab_size={self.vocab_size}"
        return f"WordTokenizer({size}, {self.config})"

    # -- the preprocessing, in the order Keras applies it

    def split(self, text: str) -> list[str]:
        """``text`` -> its standardised words (before the vocabulary lookup)."""
        if self.config.strip_html:
            # clean_text leaves single spaces as the only whitespace, so the faster
            # str.split() gives exactly Keras's ASCII-whitespace split here.
            return keras_standardize(clean_text(text), self.config.standardize).split()
        return keras_split(keras_standardize(text, self.config.standardize))

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        """Learn the vocabulary from ``texts`` (Keras's ``adapt``); returns ``self``."""
        counts: Counter[str] = Counter()
        n_texts = 0
        for n_texts, text in enumerate(texts, start=1):
            if not isinstance(text, str):
                raise TypeError(
                    f"texts must be strings, got {type(text).__name__} at index {n_texts - 1}"
                )
            counts.update(self.split(text))
        if n_texts == 0:
            raise ValueError("fit needs at least one text, got none")
        counts.pop(PAD_TOKEN, None)  # Keras removes its special tokens from the counts
        counts.pop(OOV_TOKEN, None)
        if not counts:
            raise ValueError(f"fit found no words in {n_texts} texts (are they all empty?)")
        words = [w for w, c in counts.items() if c >= self.config.min_freq]
        words.sort(key=lambda w: (counts[w], w), reverse=True)
        if self.config.max_tokens is not None:
            words = words[: self.config.max_tokens - 2]
        self._set_vocabulary([PAD_TOKEN, OOV_TOKEN, *words])
        return self

    def _set_vocabulary(self, vocabulary: list[str]) -> None:
        self._vocabulary = vocabulary
        self._index = {token: i for i, token in enumerate(vocabulary)}

    def _require_fitted(self) -> list[str]:
        if self._vocabulary is None:
            raise RuntimeError("WordTokenizer is not fitted; call fit(texts) or load one")
        return self._vocabulary

    # -- the Tokenizer interface

    @property
    def vocabulary(self) -> list[str]:
        """All tokens by index, specials included (Keras's ``get_vocabulary()``)."""
        return list(self._require_fitted())

    @property
    def vocab_size(self) -> int:
        return len(self._require_fitted())

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def token_to_id(self, token: str) -> int:
        self._require_fitted()
        return self._index.get(token, self.unk_id)

    def id_to_token(self, index: int) -> str:
        vocabulary = self._require_fitted()
        return vocabulary[_as_ids([index], len(vocabulary))[0]]

    def encode(self, text: str) -> list[int]:
        """``text`` -> token ids; ``[]`` for a text without words (unless
        ``output_sequence_length`` is set, which pads/truncates to that length)."""
        self._require_fitted()
        unk = self.unk_id
        ids = [self._index.get(token, unk) for token in self.split(text)]
        length = self.config.output_sequence_length
        if length is not None:
            ids = ids[:length] + [self.pad_id] * (length - len(ids))
        return ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: Sequence[int]) -> str:
        """Token ids -> the standardised words joined by spaces; padding is skipped and
        OOV shows as ``[UNK]`` (standardisation is lossy, so this is not the input)."""
        vocabulary = self._require_fitted()
        ids = _as_ids(ids, len(vocabulary))
        return " ".join(vocabulary[i] for i in ids if i != self.pad_id)

    # -- saving

    def to_json(self) -> str:
        """The config and the vocabulary as one JSON document (``vocab.json``)."""
        return json.dumps(
            {
                "format": "recur-word-vocab",
                "version": 1,
                "config": asdict(self.config),
                "vocabulary": self._require_fitted(),
            },
            ensure_ascii=True,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "vocab.json") -> WordTokenizer:
        """Inverse of :meth:`to_json`; checks the document before trusting it."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source} is not valid JSON ({err})") from err
        if not isinstance(data, dict) or data.get("format") != "recur-word-vocab":
            raise ValueError(f"{source} is not a recur word vocabulary (format field missing)")
        if data.get("version") != 1:
            raise ValueError(f"{source}: unsupported version {data.get('version')!r}, expected 1")
        config = _config_from_dict(WordTokenizerConfig, data.get("config"), source)
        vocabulary = data.get("vocabulary")
        if not isinstance(vocabulary, list) or not all(isinstance(t, str) for t in vocabulary):
            raise ValueError(f"{source}: 'vocabulary' must be a list of strings")
        if vocabulary[:2] != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(
                f"{source}: the vocabulary must start with {[PAD_TOKEN, OOV_TOKEN]}, "
                f"got {vocabulary[:2]}"
            )
        if len(set(vocabulary)) != len(vocabulary):
            duplicates = sorted(t for t, c in Counter(vocabulary).items() if c > 1)
            raise ValueError(f"{source}: repeated tokens {duplicates[:5]}")
        if config.max_tokens is not None and len(vocabulary) > config.max_tokens:
            raise ValueError(
                f"{source}: {len(vocabulary)} tokens exceed max_tokens={config.max_tokens}"
            )
        tokenizer = cls(**asdict(config))
        tokenizer._set_vocabulary(vocabulary)
        return tokenizer

    def save(self, folder: PathLike) -> Path:
        """Write ``vocab.json`` then ``tokenizer_config.json`` into ``folder``."""
        folder = Path(folder)
        _write_atomic(folder / VOCAB_FILE, self.to_json() + "\n")
        _write_header(folder, self.kind, VOCAB_FILE, None)
        return folder

    @classmethod
    def load(cls, folder: PathLike) -> WordTokenizer:
        path = Path(folder) / VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        return cls.from_json(path.read_text(encoding="utf-8"), source=str(path))


# ----------------------------------------------------------------------------- subwords


@dataclass(frozen=True)
class SubwordTokenizerConfig:
    """Settings of :class:`SubwordTokenizer` (saved in ``tokenizer_config.json``).

    Attributes:
        kind: ``"bpe"`` or ``"wordpiece"``.
        vocab_size: target vocabulary size, specials included (the trainer may stop short
            on a small corpus).
        min_freq: minimum count of a pair/piece to be merged/kept.
        lowercase: lower-case (full Unicode) after NFKC.
        strip_html: run :func:`recur.data.text.clean_text` before encoding.
        pretokenizer: ``"whitespace"`` (split on whitespace and punctuation; decoding puts
            a space between every word and punctuation mark) or ``"metaspace"`` (BPE only;
            spaces are kept as ``▁`` so ``decode(encode(text))`` gives the text back with
            runs of whitespace collapsed: what detokenized metrics such as BLEU need).
    """

    kind: str = "bpe"
    vocab_size: int = 8000
    min_freq: int = 2
    lowercase: bool = True
    strip_html: bool = True
    pretokenizer: str = "whitespace"

    def __post_init__(self) -> None:
        if self.kind not in SUBWORD_KINDS:
            raise ValueError(f"kind must be one of {SUBWORD_KINDS}, got {self.kind!r}")
        _check_positive("vocab_size", self.vocab_size, 3)
        _check_positive("min_freq", self.min_freq, 1)
        for name in ("lowercase", "strip_html"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.pretokenizer not in PRETOKENIZERS:
            raise ValueError(f"pretokenizer must be one of {PRETOKENIZERS}, got {self.pretokenizer!r}")
        if self.pretokenizer == "metaspace" and self.kind != "bpe":
            raise ValueError(f"pretokenizer 'metaspace' needs kind 'bpe', got {self.kind!r}")


class SubwordTokenizer:
    """BPE or WordPiece, trained with Hugging Face ``tokenizers``; ``[PAD]`` = 0, ``[UNK]`` = 1."""

    def __init__(
        self,
        kind: str = "bpe",
        vocab_size: int = 8000,
        min_freq: int = 2,
        lowercase: bool = True,
        strip_html: bool = True,
        pretokenizer: str = "whitespace",
    ) -> None:
        self.config = SubwordTokenizerConfig(
            kind=kind,
            vocab_size=vocab_size,
            min_freq=min_freq,
            lowercase=lowercase,
            strip_html=strip_html,
            pretokenizer=pretokenizer,
        )
        self._hf: Any = None  # tokenizers.Tokenizer once fitted or loaded

    @property
    def kind(self) -> str:
        return self.config.kind

    def __repr__(self) -> str:
        size = "unfitted" if self._hf is None else f"vocab_size={self.vocab_size}"
        return f"SubwordTokenizer({size}, {self.config})"

    def _new_model(self) -> tuple[Any, Any]:
        """An untrained HF tokenizer with our normaliser/pre-tokenizer, and its trainer."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        specials = [SUBWORD_PAD_TOKEN, OOV_TOKEN]  # trained ids follow this order: 0, 1
        cfg = self.config
        if cfg.pretokenizer == "metaspace":
            return self._new_metaspace_model(specials)
        if cfg.kind == "bpe":
            hf = HFTokenizer(models.BPE(unk_token=OOV_TOKEN, end_of_word_suffix="</w>"))
            hf.decoder = decoders.BPEDecoder(suffix="</w>")
            trainer = trainers.BpeTrainer(
                vocab_size=cfg.vocab_size,
                min_frequency=cfg.min_freq,
                special_tokens=specials,
                end_of_word_suffix="</w>",
                show_progress=False,
            )
        else:
            hf = HFTokenizer(models.WordPiece(unk_token=OOV_TOKEN, continuing_subword_prefix="##"))
            hf.decoder = decoders.WordPiece(prefix="##")
            trainer = trainers.WordPieceTrainer(
                vocab_size=cfg.vocab_size,
                min_frequency=cfg.min_freq,
                special_tokens=specials,
                continuing_subword_prefix="##",
                show_progress=False,
            )
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if cfg.lowercase else [])
        hf.normalizer = normalizers.Sequence(steps)
        hf.pre_tokenizer = pre_tokenizers.Whitespace()
        return hf, trainer

    def _new_metaspace_model(self, specials: list[str]) -> tuple[Any, Any]:
        """Reversible BPE: words start with ``▁``, punctuation is its own piece."""
        from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
        from tokenizers import Tokenizer as HFTokenizer

        cfg = self.config
        hf = HFTokenizer(models.BPE(unk_token=OOV_TOKEN))
        steps = [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
        hf.normalizer = normalizers.Sequence(steps + ([normalizers.Lowercase()] if cfg.lowercase else []))
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation(behavior="isolated")]
        )
        hf.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_freq,
                                      special_tokens=specials, show_progress=False)
        return hf, trainer

    def _prepare(self, text: str) -> str:
        return clean_text(text) if self.config.strip_html else text

    def fit(self, texts: Iterable[str]) -> SubwordTokenizer:
        """Train the subword model on ``texts``; returns ``self``."""
        prepared = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__} at {i}")
            prepared.append(self._prepare(text))
        if not any(text.strip() for text in prepared):
            raise ValueError(f"fit found no text to train on in {len(prepared)} texts")
        hf, trainer = self._new_model()
        hf.train_from_iterator(prepared, trainer=trainer, length=len(prepared))
        self._set_model(hf, source="the trained model")
        return self

    def _set_model(self, hf: Any, source: str) -> None:
        for token, expected in ((SUBWORD_PAD_TOKEN, 0), (OOV_TOKEN, 1)):
            if hf.token_to_id(token) != expected:
                raise ValueError(
                    f"{source}: {token} must have id {expected}, got {hf.token_to_id(token)}"
                )
        self._hf = hf

    def _require_fitted(self) -> Any:
        if self._hf is None:
            raise RuntimeError("SubwordTokenizer is not fitted; call fit(texts) or load one")
        return self._hf

    @property
    def vocab_size(self) -> int:
        return self._require_fitted().get_vocab_size()

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def token_to_id(self, token: str) -> int:
        found = self._require_fitted().token_to_id(token)
        return self.unk_id if found is None else found

    def id_to_token(self, index: int) -> str:
        hf = self._require_fitted()
        return hf.id_to_token(_as_ids([index], hf.get_vocab_size())[0])

    def tokens(self, text: str) -> list[str]:
        """The subword strings of ``text`` (for inspection)."""
        return self._require_fitted().encode(self._prepare(text)).tokens

    def encode(self, text: str) -> list[int]:
        """``text`` -> subword ids; ``[]`` for a text without tokens."""
        return self._require_fitted().encode(self._prepare(text)).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Like ``[encode(t) for t in texts]``, encoded in parallel by the Rust library."""
        hf = self._require_fitted()
        return [e.ids for e in hf.encode_batch([self._prepare(t) for t in texts])]

    def decode(self, ids: Sequence[int]) -> str:
        """Subword ids -> text, merging pieces into words; ``[PAD]``/``[UNK]`` are dropped."""
        hf = self._require_fitted()
        ids = _as_ids(ids, hf.get_vocab_size())
        return hf.decode(ids)

    def save(self, folder: PathLike) -> Path:
        """Write Hugging Face's ``tokenizer.json`` then ``tokenizer_config.json``."""
        folder = Path(folder)
        _write_atomic(folder / HF_TOKENIZER_FILE, self._require_fitted().to_str())
        _write_header(folder, self.kind, HF_TOKENIZER_FILE, asdict(self.config))
        return folder

    @classmethod
    def load(cls, folder: PathLike, config: dict[str, Any] | None = None) -> SubwordTokenizer:
        """Read ``tokenizer.json`` (and the settings from the header unless given)."""
        from tokenizers import Tokenizer as HFTokenizer

        folder = Path(folder)
        if config is None:
            config = _read_json(folder / HEADER_FILE).get("config")
        cfg = _config_from_dict(SubwordTokenizerConfig, config, str(folder / HEADER_FILE))
        path = folder / HF_TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        try:
            hf = HFTokenizer.from_str(path.read_text(encoding="utf-8"))
        except Exception as err:  # the Rust library raises a bare Exception
            raise ValueError(f"{path} is not a valid Hugging Face tokenizer ({err})") from err
        tokenizer = cls(**asdict(cfg))
        tokenizer._set_model(hf, source=str(path))
        return tokenizer


# ----------------------------------------------------------------------------- factory


def make_tokenizer(kind: str, **options: Any) -> WordTokenizer | SubwordTokenizer:
    """``"word"`` -> :class:`WordTokenizer`; ``"bpe"``/``"wordpiece"`` ->
    :class:`SubwordTokenizer`; ``options`` go to the constructor."""
    if kind == WordTokenizer.kind:
        return WordTokenizer(**options)
    if kind in SUBWORD_KINDS:
        return SubwordTokenizer(kind=kind, **options)
    raise ValueError(f"tokenizer kind must be one of {('word', *SUBWORD_KINDS)}, got {kind!r}")


def load_tokenizer(folder: PathLike) -> WordTokenizer | SubwordTokenizer:
    """Load the tokenizer saved in ``folder``, choosing the class from its header."""
    folder = Path(folder)
    header_path = folder / HEADER_FILE
    if not header_path.is_file():
        raise FileNotFoundError(
            f"no {HEADER_FILE} in {folder}; expected a folder written by a tokenizer's save()"
        )
    header = _read_json(header_path)
    if not isinstance(header, dict) or header.get("format") != HEADER_FORMAT:
        raise ValueError(f"{header_path} is not a recur tokenizer header")
    if header.get("version") != HEADER_VERSION:
        raise ValueError(
            f"{header_path}: unsupported version {header.get('version')!r}, "
            f"expected {HEADER_VERSION}"
        )
    kind = header.get("kind")
    if kind == WordTokenizer.kind:
        return WordTokenizer.load(folder)
    if kind in SUBWORD_KINDS:
        config = header.get("config")
        if not isinstance(config, dict) or config.get("kind") != kind:
            raise ValueError(f"{header_path}: config missing or disagrees with kind {kind!r}")
        return SubwordTokenizer.load(folder, config)
    raise ValueError(
        f"{header_path}: unknown tokenizer kind {kind!r}; known: {('word', *SUBWORD_KINDS)}"
    )
