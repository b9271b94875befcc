"""Named-entity tagging (many-to-many, synced): CoNLL sentences → SequenceTagger → spans.

The task the Trainer runs, the presets, the vocabularies, and the CLI verbs built on them:

    recur train tagger --train eng.train.gz --valid eng.testa.gz --out DIR [--preset best]
    recur evaluate DIR --data eng.testa.gz [--json]     span P/R/F1 per type and overall
    recur tag DIR --input FILE [--format conll|text]    CoNLL + predicted column, or entities
    recur predict DIR "Peter Blackburn visited Brussels."

Words are looked up lower-cased with digits mapped to 0 (``lowercase``, ``zero_digits``);
the original spelling still reaches the model through the characters and a casing class
(Reimers & Gurevych 2017: numeric, mostly numeric, lower, upper, initial upper, contains
digit, other). Tags are converted to the model's scheme (IOB2 or BIOES) when read and
back to spans for scoring, with conlleval's rules (``recur.data.spans``).

Batches are bucketed by sentence length (``recur.data.batching.BucketBatcher``'s plan),
so the BiLSTM's fused kernel covers almost every step on a CPU (``Recurrent`` runs the
kernel up to the batch's shortest sentence and readable steps after it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from recur.cells.base import check_choice, check_positive_int
from recur.data.batching import BucketBatcher
from recur.data.conll import Sentence, format_conll, open_text, read_conll
from recur.data.spans import Span, span_scores, spans
from recur.models.tagger import CHAR_ENCODERS, HEADS, SequenceTagger, TaggerConfig
from recur.tasks import load_for_backend
from recur.training import Task, TrainConfig, TrainingDiverged, register_task, run_training
from recur.training.checkpoint import load_checkpoint, write_json
from recur.training.config import add_ema_argument
from recur.training.task import StepOutput

VOCAB_FILE = "tagger_vocab.json"
PAD, UNK = "<pad>", "<unk>"
SCHEMES = ("iob2", "bioes")


# -- words, characters, casing -------------------------------------------------------------


def casing(word: str) -> int:
    """Casing class of a word, 1..7 (0 is padding): numeric, mostly numeric, all lower,
    all upper, initial upper, contains a digit, other."""
    digits = sum(c.isdigit() for c in word)
    if word.isdigit():
        return 1
    if digits / max(len(word), 1) > 0.5:
        return 2
    if word.islower():
        return 3
    if word.isupper():
        return 4
    if word[:1].isupper():
        return 5
    if digits:
        return 6
    return 7


@dataclass(frozen=True)
class TaggerDataConfig:
    """How CoNLL sentences become batches (saved in the checkpoint's config.json)."""

    scheme: str = "iob2"           # iob2 | bioes: the tags the model predicts
    tag_column: int = -1           # which CoNLL column holds the tags
    lowercase: bool = True         # word lookup lower-cased (casing feature keeps the case)
    zero_digits: bool = True       # word lookup with every digit 0
    min_freq: int = 1              # words seen fewer times in training are unknown
    max_word_length: int = 30      # characters kept per word for the character encoder
    batch_size: int = 16
    bucket: bool = True            # sort by length inside chunks (less padding)

    def __post_init__(self) -> None:
        check_choice("scheme", self.scheme, SCHEMES)
        for name in ("min_freq", "max_word_length", "batch_size"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.tag_column, bool) or not isinstance(self.tag_column, int):
            raise ValueError(f"tag_column must be an int, got {self.tag_column!r}")

    @classmethod
    def from_dict(cls, data: dict) -> TaggerDataConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


class TaggerVocab:
    """Word, character and tag vocabularies; index 0 is padding, 1 unknown (words, chars).

    ``TaggerVocab.build(sentences, tags, data)`` counts the training data;
    ``save(folder)`` / ``load(folder)`` round-trip it through ``tagger_vocab.json``.
    """

    def __init__(self, words: list[str], chars: list[str], tags: list[str],
                 data: TaggerDataConfig) -> None:
        self.words, self.chars, self.tags, self.data = words, chars, tags, data
        self.word_ids = {w: i for i, w in enumerate(words)}
        self.char_ids = {c: i for i, c in enumerate(chars)}
        self.tag_ids = {t: i for i, t in enumerate(tags)}

    @classmethod
    def build(cls, tokens: Iterable[Sequence[str]], tags: Iterable[Sequence[str]],
              data: TaggerDataConfig, extra_words: Iterable[str] = ()) -> TaggerVocab:
        tokens = list(tokens)
        word_counts = Counter(cls.normalize_static(w, data) for s in tokens for w in s)
        char_counts = Counter(c for s in tokens for w in s for c in w)
        words = [w for w, n in sorted(word_counts.items(), key=lambda x: (-x[1], x[0]))
                 if n >= data.min_freq]
        seen = set(words)
        words += [w for w in dict.fromkeys(cls.normalize_static(w, data) for w in extra_words)
                  if w not in seen]
        chars = sorted(char_counts)
        tag_set = {t for s in tags for t in s} - {"O"}
        tag_list = ["O"] + sorted(tag_set, key=lambda t: (t[2:], t))
        return cls([PAD, UNK, *words], [PAD, UNK, *chars], tag_list, data)

    @staticmethod
    def normalize_static(word: str, data: TaggerDataConfig) -> str:
        if data.lowercase:
            word = word.lower()
        if data.zero_digits:
            word = re.sub(r"\d", "0", word)
        return word

    def word_id(self, word: str) -> int:
        return self.word_ids.get(self.normalize_static(word, self.data), 1)

    def char_row(self, word: str) -> list[int]:
        return [self.char_ids.get(c, 1) for c in word[: self.data.max_word_length]] or [1]

    def tag_id(self, tag: str, where: str = "") -> int:
        try:
            return self.tag_ids[tag]
        except KeyError:
            raise ValueError(f"{where}unknown tag {tag!r}: this model knows "
                             f"{', '.join(self.tags)}") from None

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / VOCAB_FILE
        write_json(path, {"words": self.words, "chars": self.chars, "tags": self.tags,
                          "data": asdict(self.data)})
        return path

    @classmethod
    def load(cls, folder: str | Path) -> TaggerVocab:
        path = Path(folder) / VOCAB_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            return cls(saved["words"], saved["chars"], saved["tags"],
                       TaggerDataConfig.from_dict(saved["data"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is missing or not a tagger vocabulary: {err}") from err


# -- batches --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaggerBatch:
    """One padded batch of sentences.

    words, casing: (B, T) int64, right-padded with 0; lengths: (B,) >= 1; tags: (B, T)
    int64 or None; chars: (U, W) character ids of the U distinct words in the batch,
    char_lengths: (U,); char_index: (B, T) row of ``chars`` for each token; index: (B,)
    positions of the sentences in the batcher's input.
    """

    words: torch.Tensor
    casing: torch.Tensor
    lengths: torch.Tensor
    tags: torch.Tensor | None
    chars: torch.Tensor
    char_lengths: torch.Tensor
    char_index: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return self.words.shape[0]


class Encoded(NamedTuple):
    words: np.ndarray    # (n,) word ids
    casing: np.ndarray   # (n,) casing classes
    tokens: list[str]    # the original tokens (for characters)
    tags: np.ndarray | None


def encode(vocab: TaggerVocab, tokens: Sequence[Sequence[str]],
           tags: Sequence[Sequence[str]] | None = None, where: Sequence[str] | None = None
           ) -> list[Encoded]:
    """Sentences as id arrays; an empty sentence becomes one ``<unk>`` token (never a crash).

    ``where`` (one string per sentence, e.g. ``"file:line: "``) prefixes tag errors.
    """
    out = []
    for i, sentence in enumerate(tokens):
        sentence = list(sentence) or [UNK]
        tag_ids = None
        if tags is not None:
            prefix = where[i] if where is not None else f"sentence {i}: "
            tag_ids = np.array([vocab.tag_id(t, prefix) for t in tags[i]] or [0], dtype=np.int64)
        out.append(Encoded(np.array([vocab.word_id(w) for w in sentence], dtype=np.int64),
                           np.array([casing(w) for w in sentence], dtype=np.int64),
                           sentence, tag_ids))
    return out


class TaggerBatcher:
    """Re-iterable batches of encoded sentences, bucketed by length (``BucketBatcher``'s
    plan: same seed and epoch, same batches)."""

    def __init__(self, vocab: TaggerVocab, sentences: list[Encoded], batch_size: int,
                 shuffle: bool, seed: int = 0, epoch: int = 0, bucket: bool = True) -> None:
        self.vocab, self.sentences, self.epoch = vocab, sentences, epoch
        self.planner = BucketBatcher([s.words for s in sentences], batch_size=batch_size,
                                     shuffle=shuffle, seed=seed, bucket=bucket)

    def __len__(self) -> int:
        return len(self.planner)

    def __iter__(self):
        for positions in self.planner.plan(self.epoch):
            yield self.collate(positions)

    def collate(self, positions: np.ndarray) -> TaggerBatch:
        chosen = [self.sentences[i] for i in positions]
        B, T = len(chosen), max(len(s.words) for s in chosen)
        words = np.zeros((B, T), dtype=np.int64)
        case = np.zeros((B, T), dtype=np.int64)
        char_index = np.zeros((B, T), dtype=np.int64)
        tags = np.zeros((B, T), dtype=np.int64) if chosen[0].tags is not None else None
        distinct: dict[str, int] = {}
        for row, s in enumerate(chosen):
            n = len(s.words)
            words[row, :n], case[row, :n] = s.words, s.casing
            if tags is not None:
                tags[row, :n] = s.tags
            for t, token in enumerate(s.tokens):
                char_index[row, t] = distinct.setdefault(token, len(distinct))
        rows = [self.vocab.char_row(w) for w in distinct]
        chars = np.zeros((len(rows), max(map(len, rows))), dtype=np.int64)
        for u, r in enumerate(rows):
            chars[u, : len(r)] = r
        return TaggerBatch(
            words=torch.from_numpy(words),                                     # (B, T)
            casing=torch.from_numpy(case),                                     # (B, T)
            lengths=torch.tensor([len(s.words) for s in chosen]),              # (B,)
            tags=None if tags is None else torch.from_numpy(tags),             # (B, T)
            chars=torch.from_numpy(chars),                                     # (U, W)
            char_lengths=torch.tensor([len(r) for r in rows]),                 # (U,)
            char_index=torch.from_numpy(char_index),                           # (B, T)
            index=torch.from_numpy(np.asarray(positions, dtype=np.int64)),     # (B,)
        )


# -- pretrained vectors ---------------------------------------------------------------------


def read_vectors(path: str | Path, dim: int, limit: int | None = None) -> dict[str, np.ndarray]:
    """Word vectors from a word2vec (text, optional "N D" header) or GloVe text file.

    Raises ValueError naming the file and line when a vector's size is not ``dim``.
    """
    vectors: dict[str, np.ndarray] = {}
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if len(parts) <= 1:
                continue
            if len(parts) - 1 != dim:
                raise ValueError(f"{path}:{number}: expected a word and {dim} numbers "
                                 f"(word_dim), got {len(parts) - 1} numbers")
            vectors.setdefault(parts[0], np.asarray(parts[1:], dtype=np.float32))
            if limit is not None and len(vectors) >= limit:
                break
    if not vectors:
        raise ValueError(f"{path} holds no word vectors")
    return vectors


# -- the task --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    data: TaggerDataConfig
    model: dict[str, Any]          # TaggerConfig fields but the vocabulary sizes and tags
    training: TrainConfig


PRESETS: dict[str, Preset] = {
    "small": Preset(
        TaggerDataConfig(batch_size=16),
        {"word_dim": 32, "char_encoder": "cnn", "char_dim": 16, "char_hidden": 16,
         "casing_dim": 4, "hidden_size": 32, "dropout": 0.2, "word_dropout": 0.0},
        TrainConfig(epochs=5, optimizer="adam", lr=3e-3, clip_norm=5.0, monitor="f1",
                    mode="max", log_every=20),
    ),
    "best": Preset(
        TaggerDataConfig(batch_size=32),
        {"word_dim": 100, "char_encoder": "cnn", "char_dim": 30, "char_hidden": 50,
         "casing_dim": 8, "hidden_size": 200, "dropout": 0.5, "word_dropout": 0.05},
        TrainConfig(epochs=100, optimizer="adam", lr=2e-3, clip_norm=5.0, schedule="plateau",
                    gamma=0.5, plateau_patience=1, monitor="f1", mode="max", log_every=100,
                    time_budget_min=20.0),
    ),
}


class TaggerTask(Task):
    """Sequence labelling for the Trainer: encoded sentences, batches, CRF loss, span F1."""

    name = "tagger"

    def __init__(self, vocab: TaggerVocab, train: list[Encoded], valid: list[Encoded],
                 model: TaggerConfig, seed: int = 0,
                 vectors: dict[str, np.ndarray] | None = None) -> None:
        self.vocab, self.model_config, self.seed = vocab, model, seed
        self.train_data, self.valid_data, self.vectors = train, valid, vectors

    def build_model(self) -> nn.Module:
        model = SequenceTagger(self.model_config)
        if self.vectors:
            with torch.no_grad():
                weight = model.word_embed.weight
                for word, i in self.vocab.word_ids.items():
                    vector = self.vectors.get(word)
                    if vector is not None:
                        weight[i] = torch.from_numpy(vector)
        return model

    def train_batches(self, epoch: int):
        d = self.vocab.data
        return TaggerBatcher(self.vocab, self.train_data, d.batch_size, True, self.seed, epoch,
                             d.bucket)

    def valid_batches(self):
        return TaggerBatcher(self.vocab, self.valid_data, 64, False) if self.valid_data else ()

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        return StepOutput(tagger(model).loss(batch), len(batch))

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        return tagging_metrics(model, batches, self.vocab.tags)

    def predict(self, model: nn.Module, batch: Any):
        return tagger(model).decode(batch)

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "data": asdict(self.vocab.data)}

    def files(self, folder: Path) -> None:
        self.vocab.save(folder)


def tagger(model: nn.Module) -> SequenceTagger:
    """The SequenceTagger inside ``model`` (unwrapping DistributedDataParallel)."""
    return getattr(model, "module", model)


@torch.no_grad()
def tagging_metrics(model: nn.Module, batches, tag_names: list[str]) -> dict[str, Any]:
    """Loss and span-level P/R/F1, overall (``f1``) and per type (``f1_PER``...)."""
    net = tagger(model)
    total, count, true, pred = 0.0, 0, [], []
    for batch in batches:
        emissions = net(batch)
        total += float(net.loss(batch, emissions)) * len(batch)
        count += len(batch)
        pred += [[tag_names[i] for i in p] for p in net.decode(batch, emissions)]
        for row, n in zip(batch.tags.tolist(), batch.lengths.tolist(), strict=True):
            true.append([tag_names[i] for i in row[:n]])
    if count == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    return {"loss": total / count, **span_scores(true, pred).as_dict(), "sentences": count}


def _load_model(configs: dict[str, Any], folder: Path) -> nn.Module:
    return SequenceTagger(TaggerConfig.from_dict(configs["model"]))


register_task("tagger", _load_model)


# -- using a trained model ---------------------------------------------------------------------


class Entity(NamedTuple):
    type: str
    start: int      # character offset in the text (end exclusive)
    end: int
    text: str


class Token(NamedTuple):
    text: str
    start: int
    end: int


class TaggedSentence(NamedTuple):
    """One sentence of a tagged text: its tokens, their tags (the model's scheme), the
    entity spans over token positions (end exclusive) and the same entities in characters."""

    tokens: list[Token]
    tags: list[str]
    spans: list[Span]
    entities: list[Entity]


TOKEN = re.compile(r"[A-Za-z]\.(?:[A-Za-z]\.)+|\w+(?:[-'’.&]\w+)*|[^\w\s]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])|\n\s*\n")
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "gen", "sen", "rep", "gov", "jr",
                 "sr", "inc", "corp", "co", "ltd", "vs", "no", "jan", "feb", "aug", "sept",
                 "oct", "nov", "dec", "mt", "ft", "lt", "col", "capt", "sgt", "rev"}


def _ends_sentence(text: str, boundary: re.Match) -> bool:
    """False after a title or abbreviation ("Mr. Smith") or an initial ("J. Smith")."""
    if boundary.group().count("\n") >= 2:  # a blank line
        return True
    before = re.search(r"(\w+)\.$", text[: boundary.start()])
    return not before or not (before.group(1).lower() in ABBREVIATIONS
                              or (len(before.group(1)) == 1 and before.group(1).isupper()))


def split_text(text: str) -> list[list[Token]]:
    """Plain text → sentences of tokens with character offsets (a simple rule-based
    splitter: a sentence ends at . ! ? before a capital or digit, except after a title,
    a common abbreviation or an initial, and at a blank line; tokens are words, dotted
    abbreviations like U.S., numbers and single punctuation marks)."""
    ends = [m for m in SENTENCE_END.finditer(text) if _ends_sentence(text, m)]
    sentences, start = [], 0
    for end_match in [*ends, None]:
        end = end_match.start() if end_match else len(text)
        tokens = [Token(m.group(), start + m.start(), start + m.end())
                  for m in TOKEN.finditer(text[start:end])]
        if tokens:
            sentences.append(tokens)
        start = end_match.end() if end_match else len(text)
    return sentences


class TagScores(NamedTuple):
    tokens: list[str]             # the sentence's tokens (one ``<unk>`` for an empty one)
    tags: list[str]               # the decoded tags (Viterbi with a CRF, else argmax)
    emissions: torch.Tensor       # (T, C) per-token tag scores, C = len(vocab.tags)
    batch: TaggerBatch            # the one-sentence batch, for gates and gradient flow


class NERModel:
    """A trained tagger with its vocabularies: ``NERModel.load(DIR).tag(sentences)``."""

    def __init__(self, model: SequenceTagger, vocab: TaggerVocab) -> None:
        self.model, self.vocab = model.eval(), vocab

    @classmethod
    def load(cls, path: str | Path) -> NERModel:
        checkpoint = load_checkpoint(path, task="tagger")
        return cls(checkpoint.model, TaggerVocab.load(checkpoint.folder))

    @property
    def scheme(self) -> str:
        return self.vocab.data.scheme

    def emissions(self, batch: TaggerBatch) -> torch.Tensor:
        """Emission scores (B, T, K) of a batch; the onnx backend
        (``recur.export.OnnxNERModel``) overrides this."""
        return self.model(batch)

    @torch.no_grad()
    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[list[str]]:
        """Tags (the model's scheme) for tokenized sentences, in input order; an empty
        sentence gets an empty list."""
        if not sentences:
            return []
        encoded = encode(self.vocab, sentences)
        out: list[list[str] | None] = [None] * len(sentences)
        for batch in TaggerBatcher(self.vocab, encoded, batch_size, shuffle=False):
            paths = self.model.decode(batch, self.emissions(batch))
            for i, path in zip(batch.index.tolist(), paths, strict=True):
                out[i] = [self.vocab.tags[t] for t in path][: len(sentences[i])]
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def scores(self, tokens: Sequence[str]) -> TagScores:
        """The emission scores (per-token tag scores before the CRF) and the decoded tags
        of one tokenized sentence, with the one-sentence batch they came from."""
        encoded = encode(self.vocab, [tokens])
        batch = TaggerBatcher(self.vocab, encoded, 1, shuffle=False).collate(np.array([0]))
        emissions = self.model(batch)                                           # (1, T, C)
        path = self.model.decode(batch, emissions)[0]
        return TagScores(list(encoded[0].tokens), [self.vocab.tags[t] for t in path],
                         emissions[0], batch)

    def tag_texts(self, texts: Sequence[str], batch_size: int = 64) -> list[list[TaggedSentence]]:
        """Split each text into sentences and tokens (``split_text``), tag all sentences of
        all texts in one ``tag`` call; per text, its sentences with tokens, tags and entities
        (character offsets) in input order."""
        split = [split_text(text) for text in texts]
        flat = [[t.text for t in sentence] for sentences in split for sentence in sentences]
        tagged = iter(self.tag(flat, batch_size=batch_size))
        out = []
        for text, sentences in zip(texts, split, strict=True):
            out.append([])
            for tokens in sentences:
                tags = next(tagged)
                found = spans(tags)
                entities = [Entity(s.type, tokens[s.start].start, tokens[s.end - 1].end,
                                   text[tokens[s.start].start: tokens[s.end - 1].end])
                            for s in found]
                out[-1].append(TaggedSentence(tokens, tags, found, entities))
        return out

    def entities(self, text: str) -> list[list[Entity]]:
        """Split ``text`` into sentences and tokens, tag them, return entities per sentence."""
        return [sentence.entities for sentence in self.tag_texts([text])[0]]

    def read(self, path: str | Path) -> tuple[list[Sentence], list[Encoded]]:
        """Read labelled CoNLL data in the model's scheme; unknown tags name file and line."""
        corpus = read_conll(path, tag_column=self.vocab.data.tag_column, scheme=self.scheme)
        if not corpus.sentences:
            raise ValueError(f"{path} holds no sentences")
        where = [f"{path}:{s.line}: " for s in corpus.sentences]
        return corpus.sentences, encode(self.vocab, corpus.tokens(), corpus.tags(), where)

    @torch.no_grad()
    def evaluate(self, path: str | Path) -> dict[str, Any]:
        _, encoded = self.read(path)
        return tagging_metrics(self.model, TaggerBatcher(self.vocab, encoded, 64, False),
                               self.vocab.tags)


# -- training -----------------------------------------------------------------------------------


def train(train_path: str | Path, valid_path: str | Path | None, out: str | Path,
          data: TaggerDataConfig, model: dict, training: TrainConfig, *,
          vectors: str | Path | None = None, max_vectors: int | None = None,
          limit: int | None = None, overwrite: bool = False, resume: bool = False,
          tensorboard: bool = False, say=print):
    """Build vocabularies, train a SequenceTagger; returns (FitResult, NERModel of the best)."""
    train_corpus = read_conll(train_path, data.tag_column, data.scheme)
    sentences = train_corpus.sentences[:limit] if limit else train_corpus.sentences
    if not sentences:
        raise ValueError(f"--train {train_path} holds no sentences")
    word_vectors = None
    if vectors is not None:
        word_vectors = read_vectors(vectors, model.get("word_dim", 100), max_vectors)
    tokens, tags = [s.tokens for s in sentences], [list(s.tags) for s in sentences]
    vocab = TaggerVocab.build(tokens, tags, data, extra_words=word_vectors or ())
    train_encoded = encode(vocab, tokens, tags, [f"{train_path}:{s.line}: " for s in sentences])
    valid_encoded: list[Encoded] = []
    n_valid = 0
    if valid_path is not None:
        valid = read_conll(valid_path, data.tag_column, data.scheme)
        n_valid = len(valid)
        valid_encoded = encode(vocab, valid.tokens(), valid.tags(),
                               [f"{valid_path}:{s.line}: " for s in valid.sentences])
    config = TaggerConfig(num_words=len(vocab.words), num_chars=len(vocab.chars),
                          tags=tuple(vocab.tags), scheme=data.scheme, **model)
    say(f"data: {len(sentences):,} train / {n_valid:,} valid sentences, "
        f"{len(vocab.words):,} words, {len(vocab.chars):,} characters, tags {' '.join(vocab.tags)}")
    task = TaggerTask(vocab, train_encoded, valid_encoded, config, training.seed, word_vectors)
    result = run_training(task, training, out, overwrite=overwrite, resume=resume,
                          tensorboard=tensorboard)
    return result, NERModel.load(out)


# -- CLI ---------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", required=True, help="CoNLL training file (.gz allowed)")
    parser.add_argument("--valid", help="CoNLL validation file (picks the best epoch)")
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="best")
    parser.add_argument("--scheme", choices=SCHEMES, help="tag scheme the model predicts")
    parser.add_argument("--tag-column", type=int, help="CoNLL column of the tags (default: last)")
    parser.add_argument("--char-encoder", choices=CHAR_ENCODERS)
    parser.add_argument("--head", choices=HEADS, help="crf or softmax output layer")
    parser.add_argument("--word-dim", type=int)
    parser.add_argument("--char-dim", type=int)
    parser.add_argument("--char-hidden", type=int)
    parser.add_argument("--hidden-size", type=int, help="BiLSTM size per direction")
    parser.add_argument("--num-layers", type=int)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--word-dropout", type=float)
    parser.add_argument("--vectors", help="pretrained word vectors, word2vec/GloVe text file")
    parser.add_argument("--max-vectors", type=int, help="read only the first N vectors")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    parser.add_argument("--momentum", type=float)
    parser.add_argument("--clip-norm", type=float)
    add_ema_argument(parser)
    parser.add_argument("--time-budget", type=float, metavar="MIN",
                        help="stop cleanly after MIN minutes, keeping the best model")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, metavar="N", help="use only N training sentences")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard event files to OUT/tensorboard")


def configs_from_args(args: argparse.Namespace) -> tuple[TaggerDataConfig, dict, TrainConfig]:
    preset = PRESETS[args.preset]
    data_overrides = {"scheme": args.scheme, "tag_column": args.tag_column,
                      "batch_size": args.batch_size}
    data = replace(preset.data, **{k: v for k, v in data_overrides.items() if v is not None})
    model_overrides = {"char_encoder": args.char_encoder, "head": args.head,
                       "word_dim": args.word_dim, "char_dim": args.char_dim,
                       "char_hidden": args.char_hidden, "hidden_size": args.hidden_size,
                       "num_layers": args.num_layers, "dropout": args.dropout,
                       "word_dropout": args.word_dropout}
    model = dict(preset.model) | {k: v for k, v in model_overrides.items() if v is not None}
    TaggerConfig(num_words=2, num_chars=2, tags=("O",), **model)  # check before reading data
    train_overrides = {"epochs": args.epochs, "lr": args.lr, "optimizer": args.optimizer,
                       "momentum": args.momentum, "clip_norm": args.clip_norm, "ema_decay": args.ema,
                       "time_budget_min": args.time_budget, "device": args.device,
                       "seed": args.seed, "quiet": args.quiet or None,
                       "batch_size": data.batch_size}
    training = replace(preset.training,
                       **{k: v for k, v in train_overrides.items() if v is not None})
    if args.limit is not None:
        check_positive_int("--limit", args.limit)
    return data, model, training


def train_command(args: argparse.Namespace) -> int:
    data, model, training = configs_from_args(args)
    try:
        result, best = train(args.train, args.valid, args.out, data, model, training,
                             vectors=args.vectors, max_vectors=args.max_vectors,
                             limit=args.limit, overwrite=args.overwrite, resume=args.resume,
                             tensorboard=args.tensorboard)
    except TrainingDiverged as error:
        print(f"recur train: training diverged: {error}; {args.out}/last keeps the last good "
              "checkpoint (try a lower --lr or --clip-norm)", file=sys.stderr)
        return 1
    if args.valid:
        f1 = best.evaluate(args.valid)["f1"]
        print(f"saved to {args.out}; validation span F1 {f1:.4f} ({result.stop_reason})")
    else:
        print(f"saved to {args.out} ({result.stop_reason})")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    model = NERModel.load(args.model)
    metrics = model.evaluate(args.data)
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(f"span F1 {metrics['f1']:.4f}   precision {metrics['precision']:.4f}   "
          f"recall {metrics['recall']:.4f}   ({metrics['support']:,} entities, "
          f"{metrics['sentences']:,} sentences)")
    kinds = sorted(k.removeprefix("f1_") for k in metrics if k.startswith("f1_"))
    for kind in kinds:
        print(f"  {kind:>6}: precision {metrics[f'precision_{kind}']:.4f}  "
              f"recall {metrics[f'recall_{kind}']:.4f}  F1 {metrics[f'f1_{kind}']:.4f}  "
              f"({metrics[f'support_{kind}']:,})")
    return 0


def add_tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint folder")
    parser.add_argument("--input", required=True, help="file to tag (.gz allowed)")
    parser.add_argument("--format", choices=["conll", "text"], default="text",
                        help="conll: token per line, writes the columns plus the prediction; "
                        "text: plain text, prints the entities")
    parser.add_argument("--output", help="write here instead of standard output")
    parser.add_argument("--json", action="store_true", help="text format: JSON lines")


def tag_command(args: argparse.Namespace) -> int:
    model = load_for_backend(args, NERModel.load, "OnnxNERModel")
    if args.format == "conll":
        corpus = read_conll(args.input, tag_column=None)
        text = format_conll(corpus.sentences, model.tag(corpus.tokens()))
    else:
        with open_text(args.input) as handle:
            try:
                source = handle.read()
            except UnicodeDecodeError as err:
                raise ValueError(f"--input {args.input} is not UTF-8 text: {err}") from None
        text = format_entities(model.entities(source), args.json)
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    else:
        sys.stdout.write(text)
    return 0


def format_entities(found: list[list[Entity]], as_json: bool) -> str:
    lines = []
    for number, entities in enumerate(found):
        for e in entities:
            if as_json:
                lines.append(json.dumps({"sentence": number, **e._asdict()}))
            else:
                lines.append(f"{number}\t{e.start}\t{e.end}\t{e.type}\t{e.text}")
    return "".join(line + "\n" for line in lines)


def predict_command(args: argparse.Namespace) -> int:
    """``recur predict DIR "text" ...``: the entities of each text (or --input lines)."""
    texts = list(args.texts)
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise FileNotFoundError(f"--input {path} does not exist")
        texts += path.read_text(encoding="utf-8").splitlines()
    if not texts:
        raise ValueError("give texts to tag as arguments or --input FILE, got none")
    model = load_for_backend(args, NERModel.load, "OnnxNERModel")
    for text in texts:
        found = [e for sentence in model.entities(text) for e in sentence]
        if args.json:
            print(json.dumps({"text": text, "entities": [e._asdict() for e in found]}))
        else:
            print("  ".join(f"[{e.text}]{e.type}" for e in found) or "(no entities)")
    return 0


def plot_tag_scores(scores: TagScores, tag_names: Sequence[str], path: str | Path,
                    title: str | None = None) -> Path:
    """PNG heatmap of the emission scores: tags (rows) × tokens (columns), the decoded tag
    of each token circled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = scores.emissions.float().T.numpy()                                 # (C, T)
    T = len(scores.tokens)
    fig = Figure(figsize=(max(5.0, 0.5 * T + 2.5), 0.32 * len(tag_names) + 1.8),
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bound = max(float(np.abs(values).max()), 1e-12)
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound)
    ax.scatter(range(T), [list(tag_names).index(t) for t in scores.tags], s=80,
               facecolors="none", edgecolors="black", linewidths=1.5)
    ax.set_xticks(range(T), scores.tokens, rotation=90)
    ax.set_yticks(range(len(tag_names)), tag_names)
    ax.set_xlabel("token (circle: decoded tag)")
    fig.colorbar(image, ax=ax, fraction=0.03)
    ax.set_title(title or "emission scores per token and tag")
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def inspect_command(args: argparse.Namespace) -> int:
    """``recur inspect DIR --text ...``: each sentence's tags and emission scores; with
    --out, heatmaps of them, the BiLSTM's forward gates and the gradient flow (a folder
    of PNGs, or one self-contained HTML report for a .html path)."""
    import contextlib
    import functools

    from recur.diagnostics import gradient_flow, plot_gates, plot_gradient_flow, record_gates
    from recur.diagnostics.report import Report

    if not args.text:
        raise ValueError("give the text to inspect with --text, got none")
    model = NERModel.load(args.model)
    net, tags = model.model, model.vocab.tags
    report = (Report(args.out, title=f"recur inspect {args.model}", model=net)
              if args.out else None)
    with report or contextlib.nullcontext():
        for n, text in enumerate(args.text):
            for k, sentence in enumerate(split_text(text) or [[]]):
                scores = model.scores([t.text for t in sentence])
                table = format_tag_scores(scores, tags)
                print(table)
                if report is None:
                    continue
                stem = f"text{n}-s{k}"
                emissions = plot_tag_scores(scores, tags, report.figure(f"{stem}-tag-scores.png"))
                gates = plot_gates(record_gates(net, (scores.batch,), recurrent="rnn"),
                                   report.figure(f"{stem}-gates.png"), tokens=scores.tokens)
                # L = -log p(decoded tags | words): how far back each state moves the decision
                decoded = replace(scores.batch, tags=torch.tensor(
                    [[model.vocab.tag_id(t) for t in scores.tags]]))
                flows = {name: gradient_flow(net, (scores.batch,), recurrent="rnn",
                                             direction=d,
                                             loss_fn=functools.partial(net.loss, decoded))
                         for d, name in enumerate(("forward", "reverse"))}
                flow = plot_gradient_flow(flows, report.figure(f"{stem}-gradient-flow.png"),
                                          title="‖∂L/∂h_t‖ of the decoded tags' loss "
                                                "(reverse: t from the sentence's end)")
                report.add(f"text {n}, sentence {k + 1}: {' '.join(scores.tokens)}", table, [
                    ("emission scores: tags × tokens, the decoded tag circled", emissions),
                    ("gates and states of the BiLSTM's forward direction", gates),
                    ("gradient flow through time in both directions", flow)])
        if report is not None:
            for path in report.close():
                print(f"wrote {path}")
    return 0


def format_tag_scores(scores: TagScores, tag_names: Sequence[str]) -> str:
    """Per token: the decoded tag, its emission score and the best other tag's."""
    lines = [f"  {'token':<16} {'tag':<8} {'score':>7}   {'runner-up':<8} {'score':>7}"]
    for token, tag, row in zip(scores.tokens, scores.tags, scores.emissions.tolist(), strict=True):
        chosen = list(tag_names).index(tag)
        other = max((i for i in range(len(row)) if i != chosen), key=row.__getitem__,
                    default=chosen)
        lines.append(f"  {token:<16} {tag:<8} {row[chosen]:>7.2f}   {tag_names[other]:<8} "
                     f"{row[other]:>7.2f}")
    return "\n".join(lines)
