"""Language modelling: text → token stream → LanguageModel, trained with truncated BPTT.

The task the Trainer runs, the presets, the Python API and the CLI verbs built on them:

    recur train lm --train PATH [--valid PATH | --valid-fraction F] --level char|word|bpe
                   --out DIR [--preset char|word|word-best|word-long|tiny] [--time-budget MIN]
    recur evaluate DIR --data PATH [--json] [--cache-size N ...]   loss, perplexity, bits
    recur generate DIR --prompt TEXT --length N [--temperature T --top-k K --top-p P
                   --seed S --stop STR --beam K] [--cache-size N ...]
    recur complete DIR --prompt "the clouds are in the" [--k 5] [--words N]
                   [--cache-size N --cache-theta T --cache-lambda L]

Training reads the text as one stream, cut into B parallel rows fed in windows of
``bptt`` tokens, the state carried from window to window (``TrainConfig.tbptt``; the
layout is drawn in ``recur.training.tbptt`` and ``recur.data.streams``). Each epoch starts
the windows at a different offset (drawn from the seed), so the window edges move.
Evaluation reads the whole held-out stream with the state carried across every window,
covering every token exactly once.

Without ``--valid`` the last ``valid_fraction`` of the training text (by characters,
cut at a line break when there is one close by) is held out — Tiny Shakespeare's
convention of the first 90% for training and the last 10% for validation.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.data.streams import LEVELS, StreamBatches, TextCodec, Window
from recur.data.text import LabelledTexts
from recur.generation import beam_search, check_sampling, sample, select_rows, stream_text
from recur.models.adaptive_softmax import check_cutoffs, frequency_order
from recur.models.language_model import DROPOUTS, LanguageModel, LanguageModelConfig
from recur.models.neural_cache import CachedDecoding, NeuralCache, cache_log_probs, fit_cache
from recur.tasks import load_for_backend
from recur.training import Task, TrainConfig, Trainer, distributed, register_task
from recur.training.checkpoint import load_checkpoint
from recur.training.config import add_ema_argument, fast_cpu_precision
from recur.training.task import StepOutput, mean_loss


@dataclass(frozen=True)
class LMDataConfig:
    """How text becomes TBPTT windows (saved in the checkpoint's config.json)."""

    level: str = "char"               # char | word | bpe
    max_tokens: int | None = None     # vocabulary cap (word: all words; bpe: 8000)
    min_freq: int = 1
    batch_size: int = 64              # B parallel streams
    bptt: int = 128                   # k, tokens per window
    eval_batch_size: int = 16         # parallel streams when evaluating
    valid_fraction: float = 0.1       # held out from --train when no --valid is given
    shift_windows: bool = True        # a different window offset every epoch
    conditional: bool = False         # labelled texts, one sequence each (one-to-many)
    max_length: int = 64              # conditional: tokens kept from the start of each text

    def __post_init__(self) -> None:
        check_choice("level", self.level, LEVELS)
        for name in ("batch_size", "bptt", "eval_batch_size", "min_freq", "max_length"):
            check_positive_int(name, getattr(self, name))
        if self.max_tokens is not None:
            check_positive_int("max_tokens", self.max_tokens)
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}")

    @classmethod
    def from_dict(cls, data: dict) -> LMDataConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Preset:
    data: LMDataConfig
    model: dict[str, Any]          # LanguageModelConfig fields but vocab_size
    training: TrainConfig


# A preset's ``"adaptive_cutoffs": "auto"``: a head of this many words when the vocabulary has
# at least twice as many, else the full softmax (small corpora).
AUTO_HEAD = 2000


def resolve_cutoffs(model: dict, vocab_size: int) -> dict:
    """The model options with ``adaptive_cutoffs="auto"`` made concrete for ``vocab_size``."""
    if model.get("adaptive_cutoffs") != "auto":
        return model
    return model | {"adaptive_cutoffs": (AUTO_HEAD,) if vocab_size >= 2 * AUTO_HEAD else None}


# The longer PTB run: a wider model with heavier dropout, 75 minutes.
WORD_BEST = Preset(
    LMDataConfig(level="word", batch_size=64, bptt=35, eval_batch_size=10),
    {"embed_dim": 650, "cell": "lstm", "hidden_size": 650, "num_layers": 2,
     "tie_weights": True, "embed_dropout": 0.05, "input_dropout": 0.4,
     "hidden_dropout": 0.3, "output_dropout": 0.4, "adaptive_cutoffs": "auto"},
    TrainConfig(epochs=1000, optimizer="adam", lr=2.5e-3, clip_norm=0.25,
                schedule="cosine", schedule_by_time=True, time_budget_min=75.0,
                warmup_steps=100, weight_decay=1.2e-6, precision=fast_cpu_precision(),
                tbptt=True, log_every=50),
)

PRESETS: dict[str, Preset] = {
    # Tiny Shakespeare in 20 minutes on the 2-core machine (docs/language-modelling.md):
    # validation 1.4234 nats/char with both cores; on one shared thread it sees ~5 epochs.
    "char": Preset(
        LMDataConfig(level="char", batch_size=64, bptt=64, eval_batch_size=16),
        {"embed_dim": 128, "cell": "lstm", "hidden_size": 512, "num_layers": 2,
         "hidden_dropout": 0.25, "output_dropout": 0.25},
        TrainConfig(epochs=1000, optimizer="adam", lr=3e-3, clip_norm=1.0, schedule="cosine",
                    schedule_by_time=True, time_budget_min=20.0, warmup_steps=50,
                    precision=fast_cpu_precision(), tbptt=True, log_every=20),
    ),
    # Penn Treebank word level (10k words + <eos>) in 20 minutes: tied embeddings and a tied
    # adaptive softmax (head of 2,000 words). Validation perplexity 94.02 with both cores
    # (docs/language-modelling.md).
    "word": Preset(
        LMDataConfig(level="word", batch_size=64, bptt=35, eval_batch_size=10),
        {"embed_dim": 400, "cell": "lstm", "hidden_size": 400, "num_layers": 2,
         "tie_weights": True, "embed_dropout": 0.05, "input_dropout": 0.3,
         "hidden_dropout": 0.2, "output_dropout": 0.2, "adaptive_cutoffs": "auto"},
        TrainConfig(epochs=1000, optimizer="adam", lr=3e-3, clip_norm=0.25, schedule="cosine",
                    schedule_by_time=True, time_budget_min=20.0, warmup_steps=50,
                    weight_decay=1.2e-6, precision=fast_cpu_precision(), tbptt=True,
                    log_every=50),
    ),
    "word-best": WORD_BEST,
    # One long PTB run: `word-best` with weight drop, heavier dropouts and weight averaging,
    # over a 35-epoch cosine. Its length is in steps, so --time-budget only ends a session's
    # slice and --resume continues the same schedule (docs/language-modelling.md).
    "word-long": Preset(
        WORD_BEST.data,
        WORD_BEST.model | {"embed_dropout": 0.1, "input_dropout": 0.5, "hidden_dropout": 0.35,
                           "output_dropout": 0.5, "weight_drop": 0.4},
        replace(WORD_BEST.training, epochs=35, schedule_by_time=False, time_budget_min=None,
                ema_decay=0.999),
    ),
    # Seconds, for tests and smoke runs.
    "tiny": Preset(
        LMDataConfig(level="char", batch_size=8, bptt=32, eval_batch_size=4),
        {"embed_dim": 16, "cell": "lstm", "hidden_size": 64, "num_layers": 1},
        TrainConfig(epochs=2, optimizer="adam", lr=1e-2, clip_norm=1.0, tbptt=True,
                    log_every=10),
    ),
}


def split_text(text: str, valid_fraction: float) -> tuple[str, str]:
    """The first (1 - f) of the characters to train and the last f to validate, cut at
    the line break nearest to the cut point if one lies within 1% of the text."""
    cut = int(round(len(text) * (1 - valid_fraction)))
    window = max(1, len(text) // 100)
    line = text.rfind("\n", max(0, cut - window), cut)
    if line >= 0:
        cut = line + 1
    if cut <= 1 or cut >= len(text) - 1:
        raise ValueError(f"valid_fraction {valid_fraction} leaves no text on one side of a "
                         f"{len(text)}-character text")
    return text[:cut], text[cut:]


def read_text(path: str | Path) -> str:
    """A UTF-8 text file (``.gz`` is decompressed)."""
    import gzip

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (expected a UTF-8 text file)")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text: {err}") from None


class LanguageModelTask(Task):
    """Next-token prediction over one token stream, for the Trainer (with ``tbptt=True``)."""

    name = "language_model"

    def __init__(self, train_ids: Tensor, valid_ids: Tensor | None, codec: TextCodec,
                 data: LMDataConfig, model: LanguageModelConfig, seed: int = 0) -> None:
        if model.vocab_size != codec.vocab_size:
            raise ValueError(f"model vocab_size must equal the codec's {codec.vocab_size}, "
                             f"got {model.vocab_size}")
        self.train_ids, self.valid_ids = train_ids, valid_ids
        self.codec, self.data, self.model_config, self.seed = codec, data, model, seed
        self.valid_chars: int | None = None  # characters of the validation text, for bpc

    def build_model(self) -> nn.Module:
        return build_model(self.model_config, self.train_ids)

    def train_batches(self, epoch: int) -> StreamBatches:
        offset = 0
        if self.data.shift_windows and epoch > 0:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            offset = int(torch.randint(self.data.bptt, (1,), generator=g))
        return StreamBatches(self.train_ids, self.data.batch_size, self.data.bptt, offset)

    def valid_batches(self):
        if self.valid_ids is None:
            return ()
        return StreamBatches(self.valid_ids, self.data.eval_batch_size, self.data.bptt,
                             keep_tail=True)

    def loss(self, model: nn.Module, batch: Window, state: Any = None) -> StepOutput:
        if state is not None and batch.row is not None:  # the tail continues one row
            state = tuple(s[:, batch.row:batch.row + 1] for s in state)
        loss, state = model(batch.inputs, state, targets=batch.targets)
        return StepOutput(loss, batch.targets.numel(), state)

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        return stream_metrics(self, model, batches, self.codec.level, self.valid_chars)

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "data": asdict(self.data)}

    def files(self, folder: Path) -> None:
        self.codec.save(folder)


def build_model(config: LanguageModelConfig, train_ids: Tensor) -> LanguageModel:
    """A fresh model; an adaptive softmax ranks the words by their counts in ``train_ids``."""
    model = LanguageModel(config)
    if config.adaptive_cutoffs is not None:
        model.set_word_order(frequency_order(train_ids, config.vocab_size))
    return model


def lm(model: nn.Module) -> LanguageModel:
    """The LanguageModel inside ``model`` (unwrapping DistributedDataParallel)."""
    return getattr(model, "module", model)


def loss_metrics(loss: float) -> dict[str, float]:
    """loss (nats/token), perplexity = exp(loss) and bits per token."""
    return {"loss": loss, "perplexity": math.exp(min(loss, 700)),
            "bits_per_token": loss / math.log(2)}


@torch.no_grad()
def stream_metrics(task: LanguageModelTask, model: nn.Module, batches, level: str,
                   num_chars: int | None = None) -> dict[str, float]:
    """Loss over every target of the stream with the state carried across all windows.

    Returns loss (nats/token), perplexity, bits per token, tokens; bits per character
    (``bpc``) for character models, or when ``num_chars`` (the text's characters) is given.
    """
    total, count, state = 0.0, 0, None
    for batch in batches:
        out = task.loss(model, batch, state)
        total += float(out.loss) * out.num_items
        count += out.num_items
        state = out.state
    if count == 0:
        raise ValueError("cannot evaluate on an empty stream")
    loss = total / count
    metrics = loss_metrics(loss) | {"tokens": float(count)}
    if level == "char":
        metrics["bpc"] = metrics["bits_per_token"]
    elif num_chars:
        metrics["bpc"] = total / num_chars / math.log(2)
    return metrics


@torch.no_grad()
def stream_outputs(model: LanguageModel, batches: StreamBatches
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """What the continuous cache (``recur.models.neural_cache``) reads, over every full row
    of the stream with the state carried: (features (B, L, E), targets (B, L), the model's
    log p(target) (B, L)). The one-row tail window (fewer than B tokens) is left out."""
    features, targets, log_p, state = [], [], [], None
    for window in batches:
        if window.row is not None:
            break
        x, state = model.features(window.inputs, state)                       # (B, k, E)
        features.append(x.float())
        targets.append(window.targets)
        log_p.append(model.log_probs(x).gather(-1, window.targets.unsqueeze(-1))[..., 0])
    if not features:
        raise ValueError("cannot evaluate on an empty stream")
    return torch.cat(features, 1), torch.cat(targets, 1), torch.cat(log_p, 1)


def cached_metrics(mixed: Tensor, model_log_p: Tensor, cache: NeuralCache) -> dict[str, float]:
    """Metrics of cache-mixed log-probabilities next to the model's own on the same tokens."""
    loss, model_loss = -float(mixed.mean()), -float(model_log_p.mean())
    return loss_metrics(loss) | {
        "tokens": float(mixed.numel()), "model_loss": model_loss,
        "model_perplexity": loss_metrics(model_loss)["perplexity"],
        "cache_size": float(cache.size), "cache_theta": cache.theta, "cache_lambda": cache.lam}


def _load_model(configs: dict[str, Any], folder: Path) -> nn.Module:
    return LanguageModel(LanguageModelConfig.from_dict(configs["model"]))


register_task("language_model", _load_model)


# -- conditional generation (one-to-many): one labelled text per sequence ----------------------


class TextBatch(NamedTuple):
    """Padded sequences: inputs (B, T); targets (B, T), -100 (ignored) at padding;
    conditions (B,) label ids."""

    inputs: Tensor
    targets: Tensor
    conditions: Tensor


class TextBatches:
    """Sized batches of whole sequences (each ``[start] + text ids (+ [end])``), shuffled
    per epoch from ``seed`` when ``shuffle``."""

    def __init__(self, sequences: list[list[int]], conditions: list[int], batch_size: int,
                 shuffle: bool, seed: int = 0) -> None:
        self.sequences, self.conditions = sequences, conditions
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed

    def __len__(self) -> int:
        return -(-len(self.sequences) // self.batch_size)

    def __iter__(self) -> Iterator[TextBatch]:
        n = len(self.sequences)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
                 if self.shuffle else list(range(n)))
        for first in range(0, n, self.batch_size):
            chosen = order[first:first + self.batch_size]
            T = max(len(self.sequences[i]) for i in chosen) - 1
            inputs = torch.zeros(len(chosen), T, dtype=torch.long)             # (B, T)
            targets = torch.full((len(chosen), T), -100, dtype=torch.long)     # (B, T)
            for row, i in enumerate(chosen):
                seq = torch.tensor(self.sequences[i])
                inputs[row, :len(seq) - 1] = seq[:-1]
                targets[row, :len(seq) - 1] = seq[1:]
            yield TextBatch(inputs, targets, torch.tensor([self.conditions[i] for i in chosen]))


def encode_openings(codec: TextCodec, texts: list[str], max_length: int) -> list[list[int]]:
    """Each text as ``[line start] + its first max_length ids (+ [line end] if it ended)``.
    Characters (char level) or words the vocabulary lacks are dropped / read as unknown."""
    mark = codec.newline_id if codec.newline_id is not None else 0
    out = []
    for text in texts:
        if codec.level == "char":
            index = codec.tokenizer.index
            ids = [index[ch] for ch in text if ch in index]
        else:
            ids = codec.tokenizer.encode(text)
        ids = ids[:max_length]
        out.append([mark, *ids] + ([mark] if len(ids) < max_length else []))
    return out


class ConditionalLMTask(Task):
    """A language model over whole labelled texts, started from its label's state."""

    name = "language_model"

    def __init__(self, train: LabelledTexts, valid: LabelledTexts | None, codec: TextCodec,
                 data: LMDataConfig, model: LanguageModelConfig, seed: int = 0) -> None:
        if model.num_conditions != train.num_classes:
            raise ValueError(f"model num_conditions must equal the {train.num_classes} labels, "
                             f"got {model.num_conditions}")
        self.codec, self.data, self.model_config, self.seed = codec, data, model, seed
        self.label_names = list(train.label_names)
        self.train_seqs = encode_openings(codec, train.texts, data.max_length)
        self.train_labels = list(train.labels)
        self.valid_seqs = encode_openings(codec, valid.texts, data.max_length) if valid else []
        self.valid_labels = list(valid.labels) if valid else []

    def build_model(self) -> nn.Module:
        ids = torch.tensor([t for seq in self.train_seqs for t in seq[1:]], dtype=torch.long)
        return build_model(self.model_config, ids)

    def train_batches(self, epoch: int) -> TextBatches:
        return TextBatches(self.train_seqs, self.train_labels, self.data.batch_size, True,
                           self.seed * 100_003 + epoch)

    def valid_batches(self):
        return TextBatches(self.valid_seqs, self.valid_labels, self.data.eval_batch_size, False)

    def loss(self, model: nn.Module, batch: TextBatch, state: Any = None) -> StepOutput:
        state = lm(model).condition_state(batch.conditions)
        loss, _ = model(batch.inputs, state, targets=batch.targets)
        return StepOutput(loss, int((batch.targets != -100).sum()))

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        loss = mean_loss(self, model, batches)
        return loss_metrics(loss)

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "data": asdict(self.data),
                "label_names": self.label_names}

    def files(self, folder: Path) -> None:
        self.codec.save(folder)


# -- using a trained model ---------------------------------------------------------------------


class Completion(NamedTuple):
    """One autocomplete answer: ``text`` continues the prompt; ``probability`` is the
    model's probability of exactly this continuation (ending where a word ends)."""

    text: str
    probability: float


class Decoding(NamedTuple):
    """How a decoder drives the model (``TrainedLanguageModel.decoding``): its ``step``
    and ``reorder`` (``recur.generation``), ``prime(tokens (N, T), state) -> state`` to
    feed a prompt in one pass, and the ``state`` to start from."""

    step: Any
    reorder: Any
    prime: Any
    state: Any


class TrainedLanguageModel:
    """A trained LM with its codec: ``TrainedLanguageModel.load(DIR).generate("To be")``."""

    def __init__(self, model: LanguageModel, codec: TextCodec, data: LMDataConfig,
                 label_names: list[str] | None = None) -> None:
        self.model, self.codec, self.data = model.eval(), codec, data
        self.label_names = label_names

    @classmethod
    def load(cls, path: str | Path) -> TrainedLanguageModel:
        checkpoint = load_checkpoint(path, task="language_model")
        configs = checkpoint.config["configs"]
        data = LMDataConfig.from_dict(configs["data"])
        return cls(checkpoint.model, TextCodec.load(data.level, checkpoint.folder), data,
                   configs.get("label_names"))

    def step(self, tokens: Tensor, state: tuple[Tensor, ...] | None = None
             ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The decoders' step (``recur.generation``): tokens (B,) -> (log_probs (B, V),
        state). Every decoder here calls it (through ``decoding``); the onnx backend
        (``recur.export.OnnxLanguageModel``) overrides it."""
        return self.model.step(tokens, state)

    def decoding(self, cache: NeuralCache | None = None,
                 state: tuple[Tensor, ...] | None = None) -> Decoding:
        """The step, reorder and prime functions every decoder here uses, starting from
        the model state ``state`` (None: zeros); with ``cache``, the continuous cache
        (``recur.models.neural_cache``) fills with the prompt and the generated tokens and
        is mixed into every next-token distribution."""
        if cache is None:
            def prime(tokens: Tensor, s: Any) -> Any:
                return self.model(tokens, s)[1]

            return Decoding(self.step, select_rows(1), prime, state)
        cached = CachedDecoding(self.model, cache)
        return Decoding(cached.step, cached.reorder, cached.prime, cached.start(state))

    def _primed(self, decoding: Decoding, ids: Tensor) -> Any:
        """The decoding state after all but the last token of the prompt ids (1, P)."""
        if ids.shape[1] == 1:
            return decoding.state
        return decoding.prime(ids[:, :-1], decoding.state)

    def initial_state(self, condition: str | None) -> tuple[Tensor, ...] | None:
        """The state a generation starts from: the condition's for a conditional model
        (``condition`` must be one of ``label_names``), else None (zeros)."""
        if self.label_names is None:
            if condition is not None:
                raise ValueError(f"condition {condition!r} given, but this model was not "
                                 "trained with conditions")
            return None
        if condition not in self.label_names:
            raise ValueError(f"condition must be one of {', '.join(self.label_names)} for "
                             f"this conditional model, got {condition!r}")
        index = torch.tensor([self.label_names.index(condition)])
        with torch.no_grad():
            return self.model.condition_state(index)

    def _prompt(self, prompt: str) -> Tensor:
        """(1, P) ids to start from: the prompt, or a line start if it is empty."""
        ids = self.codec.encode_prompt(prompt) if prompt else []
        if not ids:
            start = self.codec.newline_id
            ids = [start if start is not None else 0]
        return torch.tensor([ids])

    def generate(self, prompt: str = "", length: int = 200, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop: tuple[str, ...] = (), stop_at_eos: bool = False,
                 condition: str | None = None, cache: NeuralCache | None = None
                 ) -> Iterator[str]:
        """Stream the continuation of ``prompt``, piece by piece, as it is generated.

        ``length`` tokens at most; ``temperature`` 0 is greedy; ``seed`` makes sampling
        reproducible; generation ends early at a ``stop`` string (not included) or, with
        ``stop_at_eos``, at the end-of-line token. An empty prompt starts a new line.
        A conditional model starts from ``condition``'s state (one of ``label_names``).
        With ``cache`` the continuous cache of the prompt and the text generated so far is
        mixed into every step (``decoding``).
        Arguments and the prompt are checked here, before the first piece is asked for.
        """
        check_sampling(temperature, top_k, top_p)
        check_positive_int("length", length)
        start = self._prompt(prompt)
        decoding = self.decoding(cache, self.initial_state(condition))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        eos = self.codec.eos_id if stop_at_eos else None

        def tokens() -> Iterator[int]:
            with torch.no_grad():
                for t in sample(decoding.step, decoding.state, start, max_new_tokens=length,
                                temperature=temperature, top_k=top_k, top_p=top_p,
                                generator=generator, eos=eos):
                    if int(t) != eos:
                        yield int(t)

        space = self.codec.level != "char" and prompt and not prompt[-1].isspace()

        def decode(ids: list[int]) -> str:  # word and bpe pieces follow the prompt's last word
            text = self.codec.decode(ids)
            return " " + text if space and text and not text.startswith("\n") else text

        return stream_text(tokens(), decode, stop)

    @torch.no_grad()
    def beam(self, prompt: str = "", length: int = 50, beam_size: int = 5,
             length_penalty: float = 1.0, cache: NeuralCache | None = None) -> str:
        """The beam-search continuation of ``prompt`` (up to ``length`` tokens), with the
        continuous ``cache`` mixed in if given."""
        eos = self.codec.eos_id
        decoding = self.decoding(cache)
        best = beam_search(decoding.step, decoding.state, self._prompt(prompt), eos=eos,
                           beam_size=beam_size, max_len=length, length_penalty=length_penalty,
                           reorder_state=decoding.reorder)[0][0]
        tokens = [t for t in best.tokens if t != eos]
        return self.codec.decode(tokens)

    @torch.no_grad()
    def next_tokens(self, prompt: str, k: int = 5, cache: NeuralCache | None = None
                    ) -> list[Completion]:
        """The k most likely next tokens after ``prompt`` with their probabilities (with
        the continuous ``cache`` of the prompt mixed in if given)."""
        check_positive_int("k", k)
        ids = self._prompt(prompt)
        if cache is None:
            logits, _ = self.model(ids)
            probs = logits[0, -1].float().softmax(-1)                          # (V,)
        else:
            decoding = self.decoding(cache)
            log_probs, _ = decoding.step(ids[:, -1], self._primed(decoding, ids))
            probs = log_probs[0].exp()
        top = probs.topk(min(k, len(probs)))
        return [Completion(self.codec.token_text(int(i)), float(p))
                for p, i in zip(top.values, top.indices, strict=True)]

    @torch.no_grad()
    def complete(self, prompt: str, k: int = 5, words: int = 1,
                 cache: NeuralCache | None = None) -> list[Completion]:
        """Autocomplete: the k most likely continuations of ``words`` words.

        Word models: the next ``words`` words (beam search when words > 1). Character
        models: the rest of the partial last word (or the next word after a space), then
        more words up to ``words``, found by beam search over characters, each ending
        where a word ends (at any non-letter, non-digit, non-apostrophe character). BPE
        models: beam search over subword pieces until ``words`` words have ended.
        With ``cache``, the continuous cache of the prompt (and of each beam's own words)
        is mixed into every step: words the prompt used become likelier.
        """
        check_positive_int("k", k)
        check_positive_int("words", words)
        if self.codec.level == "word":
            if words == 1:
                return self.next_tokens(prompt, k, cache)
            decoding = self.decoding(cache)
            hyps = beam_search(decoding.step, decoding.state, self._prompt(prompt),
                               eos=self.codec.eos_id, beam_size=max(k, 5), max_len=words,
                               length_penalty=0.0, n_best=k, reorder_state=decoding.reorder)[0]
            return [Completion(" ".join(self.codec.token_text(t) for t in h.tokens),
                               math.exp(h.log_prob)) for h in hyps]
        if self.codec.level == "bpe":
            return self._complete_subwords(prompt, k, words, self.decoding(cache))
        return self._complete_chars(prompt, k, words, self.decoding(cache))

    def _complete_subwords(self, prompt: str, k: int, words: int, decoding: Decoding
                           ) -> list[Completion]:
        """Beam search over BPE pieces until ``words`` words have ended (a piece ending in
        the end-of-word mark ``</w>``, or ``<eos>``); the prompt's words are complete."""
        V = self.codec.vocab_size
        ends_word = torch.tensor([i == self.codec.eos_id or
                                  self.codec.tokenizer.id_to_token(i).endswith("</w>")
                                  for i in range(V)])                            # (V,)
        end = V  # a virtual token: the continuation is complete

        def step(tokens: Tensor, state: tuple) -> tuple[Tensor, tuple]:
            rnn_state, done = state
            tokens = tokens.clamp(max=V - 1)
            done = done + ends_word[tokens].long()                                 # (N,)
            log_probs, rnn_state = decoding.step(tokens, rnn_state)                # (N, V)
            complete = (done >= words).unsqueeze(1)                                # (N, 1)
            log_probs = torch.cat([log_probs.masked_fill(complete, -math.inf),
                                   torch.where(complete, 0.0, -math.inf)], 1)      # (N, V+1)
            return log_probs, (rnn_state, done)

        def reorder(state: tuple, index: Tensor) -> tuple:
            return decoding.reorder(state[0], index), state[1][index]

        ids = self._prompt(prompt)
        start = (self._primed(decoding, ids), torch.full((1,), -1 if prompt else 0, dtype=torch.long))
        hyps = beam_search(step, start, ids[:, -1], eos=end, beam_size=max(2 * k, 8),
                           max_len=8 * words + 1, length_penalty=0.0, n_best=k,
                           reorder_state=reorder)[0]
        return [Completion(self.codec.decode([t for t in h.tokens if t != end]),
                           math.exp(h.log_prob)) for h in hyps]

    def _complete_chars(self, prompt: str, k: int, words: int, decoding: Decoding
                        ) -> list[Completion]:
        chars = self.codec.tokenizer.chars
        V = len(chars)
        in_word_char = torch.tensor([c.isalnum() or c == "'" for c in chars])     # (V,)
        end = V  # a virtual token: "the word ends here" (any boundary character next)

        def step(tokens: Tensor, state: tuple) -> tuple[Tensor, tuple]:
            rnn_state, in_word, done = state
            tokens = tokens.clamp(max=V - 1)  # dead beams may feed the virtual token
            fed_word_char = in_word_char[tokens]                                   # (N,)
            done = done + (in_word & ~fed_word_char).long()    # a word just ended
            in_word = fed_word_char
            log_probs, rnn_state = decoding.step(tokens, rnn_state)                # (N, V)
            can_end = in_word & (done == words - 1)                                # (N,)
            boundary = log_probs.masked_fill(in_word_char, -math.inf)              # (N, V)
            end_lp = torch.where(can_end, boundary.logsumexp(-1), -math.inf)       # (N,)
            log_probs = log_probs.masked_fill(can_end.unsqueeze(1) & ~in_word_char, -math.inf)
            return torch.cat([log_probs, end_lp.unsqueeze(1)], 1), (rnn_state, in_word, done)

        def reorder(state: tuple, index: Tensor) -> tuple:
            rnn_state, in_word, done = state
            return (decoding.reorder(rnn_state, index), in_word[index], done[index])

        ids = self._prompt(prompt)
        start = (self._primed(decoding, ids), torch.zeros(1, dtype=torch.bool),
                 torch.zeros(1, dtype=torch.long))
        hyps = beam_search(step, start, ids[:, -1], eos=end, beam_size=max(2 * k, 8),
                           max_len=24 * words, length_penalty=0.0, n_best=k,
                           reorder_state=reorder)[0]
        partial = prompt[len(prompt.rstrip("".join(c for c in chars if c.isalnum() or c == "'"))):]
        return [Completion(partial + "".join(chars[t] for t in h.tokens if t != end),
                           math.exp(h.log_prob)) for h in hyps]

    @torch.no_grad()
    def evaluate_labelled(self, data: LabelledTexts) -> dict[str, float]:
        """A conditional model's loss over the openings of labelled texts."""
        if self.label_names is None:
            raise ValueError("this language model is not conditional: evaluate it on a text "
                             "file, not on labelled data")
        if list(data.label_names) != list(self.label_names):
            raise ValueError(f"data labels {data.label_names} differ from the model's "
                             f"{self.label_names}")
        task = ConditionalLMTask(data, data, self.codec, self.data, self.model.config)
        return task.evaluate(self.model, task.valid_batches())

    @torch.no_grad()
    def evaluate(self, text: str, batch_size: int | None = None,
                 cache: NeuralCache | None = None) -> dict[str, float]:
        """Loss (nats/token), perplexity and bits over the whole ``text`` stream.

        With ``cache`` the model's probabilities are mixed with a continuous cache of its
        recent outputs (``recur.models.neural_cache``); the metrics then also hold the
        model's own ``model_loss`` and ``model_perplexity`` over the same tokens, and
        the tail of fewer than B tokens that fills no row is not scored."""
        ids = self.codec.encode_stream(text)
        B = batch_size or self.data.eval_batch_size
        B = max(1, min(B, (len(ids) - 1) // 2))
        if cache is not None:
            features, targets, log_p = self.cache_inputs(ids, B)
            mixed = cache_log_probs(features, targets, log_p, cache)
            return cached_metrics(mixed, log_p, cache)
        task = LanguageModelTask(ids, ids, self.codec, self.data, self.model.config)
        batches = StreamBatches(ids, B, self.data.bptt, keep_tail=True)
        return stream_metrics(task, self.model, batches, self.codec.level, len(text))

    def cache_inputs(self, ids: Tensor, batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
        """``stream_outputs`` of the token stream ``ids`` in ``batch_size`` rows."""
        return stream_outputs(self.model, StreamBatches(ids, batch_size, self.data.bptt))

    def fit_cache(self, text: str, batch_size: int | None = None, **grid
                  ) -> tuple[NeuralCache, float]:
        """The continuous-cache settings with the lowest loss on ``text`` (``fit_cache``'s
        grid, or ``sizes=``, ``thetas=``, ``lams=``): (settings, loss in nats/token)."""
        ids = self.codec.encode_stream(text)
        B = max(1, min(batch_size or self.data.eval_batch_size, (len(ids) - 1) // 2))
        return fit_cache(*self.cache_inputs(ids, B), **grid)


# -- training ----------------------------------------------------------------------------------


def train(train_text: str, valid_text: str | None, out: str | Path, data: LMDataConfig,
          model: dict, training: TrainConfig, *, overwrite: bool = False, resume: bool = False,
          say=print):
    """Fit the codec and the model; returns (FitResult, TrainedLanguageModel of the best)."""
    torch.manual_seed(training.seed)
    codec = TextCodec.fit(data.level, train_text, data.max_tokens, data.min_freq)
    train_ids = codec.encode_stream(train_text)
    valid_ids = codec.encode_stream(valid_text) if valid_text else None
    config = LanguageModelConfig(vocab_size=codec.vocab_size,
                                 **resolve_cutoffs(model, codec.vocab_size))
    task = LanguageModelTask(train_ids, valid_ids, codec, data, config, seed=training.seed)
    task.valid_chars = len(valid_text) if valid_text else None
    params = sum(p.numel() for p in task.build_model().parameters())
    say(f"data: {len(train_ids):,} train / {len(valid_ids) if valid_ids is not None else 0:,} "
        f"valid {data.level} tokens, vocabulary {codec.vocab_size:,}; model {params:,} "
        f"parameters; {len(task.train_batches(0)):,} windows of {data.batch_size}x{data.bptt} "
        f"per epoch")
    trainer = Trainer(task, replace(training, tbptt=True), out, overwrite=overwrite,
                      resume=resume)
    try:
        result = trainer.fit()
    finally:
        distributed.cleanup()
    return result, TrainedLanguageModel.load(out)


def train_conditional(train_data: LabelledTexts, valid_data: LabelledTexts | None,
                      out: str | Path, data: LMDataConfig, model: dict, training: TrainConfig,
                      *, overwrite: bool = False, resume: bool = False, say=print):
    """Fit a conditional LM (one state per label) on labelled texts' openings."""
    torch.manual_seed(training.seed)
    data = replace(data, conditional=True)
    codec = TextCodec.fit(data.level, "\n".join(train_data.texts), data.max_tokens,
                          data.min_freq)
    config = LanguageModelConfig(vocab_size=codec.vocab_size,
                                 **(resolve_cutoffs(model, codec.vocab_size)
                                    | {"num_conditions": train_data.num_classes}))
    task = ConditionalLMTask(train_data, valid_data, codec, data, config, seed=training.seed)
    say(f"data: {len(train_data):,} train / {len(valid_data) if valid_data else 0:,} valid "
        f"labelled texts (first {data.max_length} {data.level} tokens), labels "
        f"{', '.join(train_data.label_names)}, vocabulary {codec.vocab_size:,}")
    trainer = Trainer(task, replace(training, tbptt=False), out, overwrite=overwrite,
                      resume=resume)
    try:
        result = trainer.fit()
    finally:
        distributed.cleanup()
    return result, TrainedLanguageModel.load(out)


# -- CLI ---------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", required=True, help="training text (UTF-8, .gz allowed)")
    parser.add_argument("--valid", help="validation text (default: the last --valid-fraction "
                        "of --train)")
    parser.add_argument("--valid-fraction", type=float,
                        help="hold out this last fraction of --train's characters (default 0.1)")
    parser.add_argument("--level", choices=LEVELS, help="token level (default: the preset's)")
    parser.add_argument("--labelled", action="store_true",
                        help="--train/--valid are labelled texts (aclImdb folder, .jsonl, "
                        ".csv): train a conditional LM on their openings, one state per label")
    parser.add_argument("--max-length", type=int,
                        help="--labelled: tokens kept from the start of each text (default 64)")
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="char (default for --level char/bpe), word (default for word), word-best "
                        "(75 minutes), word-long (35 epochs; slice it with --time-budget and "
                        "--resume), tiny")
    parser.add_argument("--cell", choices=sorted(CELLS))
    parser.add_argument("--embed-dim", type=int)
    parser.add_argument("--hidden-size", type=int)
    parser.add_argument("--num-layers", type=int)
    parser.add_argument("--dropout", type=float, help="output and between-layer dropout")
    parser.add_argument("--embed-dropout", type=float,
                        help="drop whole words from the embedding (a word's every use)")
    parser.add_argument("--input-dropout", type=float,
                        help="locked (variational) dropout on the embedded input")
    parser.add_argument("--hidden-dropout", type=float,
                        help="locked dropout between the layers (overrides --dropout)")
    parser.add_argument("--output-dropout", type=float,
                        help="locked dropout before the softmax (overrides --dropout)")
    parser.add_argument("--weight-drop", type=float,
                        help="DropConnect on each layer's recurrent matrix W_hh (AWD-LSTM)")
    parser.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--adaptive-cutoffs", metavar="C1,C2,...",
                        help="adaptive softmax: the head holds the C1 most frequent tokens, "
                        "tail clusters the ranks [C1, C2), ..., [Cn, V); 'none' for the full "
                        "softmax (default: the preset's)")
    parser.add_argument("--adaptive-div", type=int,
                        help="adaptive softmax: tail cluster i has dimension D / DIV^i "
                        "(default 4)")
    parser.add_argument("--max-tokens", type=int, help="vocabulary size (word, bpe)")
    parser.add_argument("--batch-size", type=int, help="parallel streams B")
    parser.add_argument("--bptt", type=int, help="tokens per TBPTT window")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--clip-norm", type=float)
    add_ema_argument(parser)
    parser.add_argument("--time-budget", type=float, metavar="MIN",
                        help="stop cleanly after MIN minutes of this session; the presets' "
                        "cosine schedule decays over it, unless --epochs or --max-steps "
                        "sets the schedule's length (then --resume continues it)")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, metavar="N",
                        help="use only the first N characters of the training text")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_cutoffs(text: str | None) -> tuple[int, ...] | None | str:
    """``--adaptive-cutoffs``: "2000,6000" -> (2000, 6000); "none" -> "none" (the full
    softmax); None (not given) -> None. The bound V is checked with the vocabulary."""
    if text is None or text.strip().lower() == "none":
        return None if text is None else "none"
    try:
        cutoffs = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--adaptive-cutoffs must be comma-separated ints such as 2000,6000 "
                         f"(or none), got {text!r}") from None
    check_cutoffs(cutoffs, None, "--adaptive-cutoffs")
    return cutoffs


def configs_from_args(args: argparse.Namespace) -> tuple[LMDataConfig, dict, TrainConfig]:
    name = args.preset or ("word" if args.level == "word" else "char")
    preset = PRESETS[name]
    data_overrides = {"level": args.level, "max_tokens": args.max_tokens,
                      "batch_size": args.batch_size, "bptt": args.bptt,
                      "valid_fraction": args.valid_fraction, "max_length": args.max_length}
    data = replace(preset.data, **{k: v for k, v in data_overrides.items() if v is not None})
    model_overrides = {"cell": args.cell, "embed_dim": args.embed_dim,
                       "hidden_size": args.hidden_size, "num_layers": args.num_layers,
                       "tie_weights": args.tie_weights,
                       "adaptive_cutoffs": parse_cutoffs(args.adaptive_cutoffs),
                       "adaptive_div": args.adaptive_div}
    if args.dropout is not None:
        model_overrides |= {"hidden_dropout": args.dropout, "output_dropout": args.dropout}
    model_overrides |= {name: getattr(args, name) for name in DROPOUTS
                        if getattr(args, name, None) is not None}
    model = dict(preset.model) | {k: v for k, v in model_overrides.items() if v is not None}
    if model.get("adaptive_cutoffs") == "none":
        model["adaptive_cutoffs"] = None
    train_overrides = {"epochs": args.epochs, "max_steps": args.max_steps, "lr": args.lr,
                       "optimizer": args.optimizer, "weight_decay": args.weight_decay,
                       "clip_norm": args.clip_norm, "time_budget_min": args.time_budget,
                       "ema_decay": args.ema,
                       "precision": args.precision, "device": args.device, "seed": args.seed,
                       "quiet": args.quiet or None, "batch_size": data.batch_size}
    training = replace(preset.training,
                       **{k: v for k, v in train_overrides.items() if v is not None})
    if args.epochs is not None or args.max_steps is not None or training.time_budget_min is None:
        # An explicit length is the schedule's length: the cosine decays over those steps and
        # --time-budget only stops this session (a long run done in slices with --resume).
        training = replace(training, schedule_by_time=False)
    return data, model, training


def train_command(args: argparse.Namespace) -> int:
    data, model, training = configs_from_args(args)
    if args.labelled:
        return train_conditional_command(args, data, model, training)
    text = read_text(args.train)
    if args.limit is not None:
        check_positive_int("--limit", args.limit)
        text = text[: args.limit]
    if args.valid:
        train_text, valid_text = text, read_text(args.valid)
    else:
        train_text, valid_text = split_text(text, data.valid_fraction)
    result, best = train(train_text, valid_text, args.out, data, model, training,
                         overwrite=args.overwrite, resume=args.resume)
    if result.stop_reason == "nonfinite":
        print(f"recur train: training diverged: {result.message}", file=sys.stderr)
        return 1
    metrics = best.evaluate(valid_text)
    print(f"saved to {args.out}; validation loss {metrics['loss']:.4f} nats/token, "
          f"perplexity {metrics['perplexity']:.2f}"
          + (f", {metrics['bpc']:.4f} bits/char" if "bpc" in metrics else ""))
    return 0


def train_conditional_command(args: argparse.Namespace, data: LMDataConfig, model: dict,
                              training: TrainConfig) -> int:
    from recur.data.text import split_train_valid
    from recur.tasks.sentiment import read_sentiment

    full = read_sentiment(args.train)
    if args.limit is not None:
        check_positive_int("--limit", args.limit)
        full = full.subset(range(min(args.limit, len(full))))
    if args.valid:
        train_data, valid_data = full, read_sentiment(args.valid)
    else:
        train_data, valid_data = split_train_valid(full, data.valid_fraction, 0)
    result, best = train_conditional(train_data, valid_data, args.out, data, model, training,
                                     overwrite=args.overwrite, resume=args.resume)
    if result.stop_reason == "nonfinite":
        print(f"recur train: training diverged: {result.message}", file=sys.stderr)
        return 1
    metrics = best.evaluate_labelled(valid_data)
    print(f"saved to {args.out}; validation loss {metrics['loss']:.4f} nats/token, "
          f"perplexity {metrics['perplexity']:.2f}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    model = TrainedLanguageModel.load(args.model)
    if model.label_names is not None:
        from recur.tasks.sentiment import read_sentiment

        metrics = model.evaluate_labelled(read_sentiment(args.data))
    else:
        metrics = model.evaluate(read_text(args.data), cache=cache_from_args(args))
    if args.json:
        print(json.dumps(metrics))
        return 0
    line = (f"loss {metrics['loss']:.4f} nats/token   perplexity {metrics['perplexity']:.2f}   "
            f"{metrics['bits_per_token']:.4f} bits/token")
    if "bpc" in metrics:
        line += f"   {metrics['bpc']:.4f} bits/char"
    if "tokens" in metrics:
        line += f"   ({int(metrics['tokens']):,} tokens)"
    if "model_perplexity" in metrics:
        line += (f"\nwith a continuous cache of {int(metrics['cache_size'])} positions "
                 f"(theta {metrics['cache_theta']:g}, lambda {metrics['cache_lambda']:g}); "
                 f"the model alone: perplexity {metrics['model_perplexity']:.2f}")
    print(line)
    return 0


def add_cache_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--cache-size N --cache-theta T --cache-lambda L`` (read by ``cache_from_args``)."""
    defaults = NeuralCache()
    parser.add_argument("--cache-size", type=int, metavar="N",
                        help=f"{prefix}mix in a continuous cache of the last N positions "
                        "(Grave et al. 2017; docs/language-modelling.md)")
    parser.add_argument("--cache-theta", type=float, metavar="T",
                        help=f"{prefix}the cache's similarity scale (default {defaults.theta})")
    parser.add_argument("--cache-lambda", type=float, metavar="L",
                        help=f"{prefix}the cache's weight in [0, 1) (default {defaults.lam})")


def cache_from_args(args: argparse.Namespace) -> NeuralCache | None:
    """``--cache-size N [--cache-theta T] [--cache-lambda L]`` (language models only)."""
    size = getattr(args, "cache_size", None)
    theta, lam = getattr(args, "cache_theta", None), getattr(args, "cache_lambda", None)
    if size is None:
        if theta is not None or lam is not None:
            raise ValueError("--cache-theta and --cache-lambda need --cache-size N")
        return None
    defaults = NeuralCache()
    return NeuralCache(size, defaults.theta if theta is None else theta,
                       defaults.lam if lam is None else lam)


def predict_command(args: argparse.Namespace) -> int:
    raise ValueError(f"{args.model} holds a language model: use `recur generate` or "
                     "`recur complete`, not `recur predict`")


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint or run folder of a language model")
    parser.add_argument("--prompt", default="", help="text to continue (default: a new line)")
    parser.add_argument("--length", type=int, default=200, help="tokens to generate")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int, help="makes sampling reproducible")
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    parser.add_argument("--beam", type=int, metavar="K", help="beam search with K beams instead "
                        "of sampling")
    parser.add_argument("--condition", help="label to condition on (conditional models)")
    parser.add_argument("--stop-at-eos", action="store_true",
                        help="end at the end-of-line token (word and bpe models)")
    add_cache_arguments(parser)


def generate_command(args: argparse.Namespace) -> int:
    check_positive_int("--length", args.length)
    check_sampling(args.temperature, args.top_k, args.top_p)
    cache = cache_from_args(args)
    model = load_for_backend(args, TrainedLanguageModel.load, "OnnxLanguageModel")
    if args.beam is not None:
        check_positive_int("--beam", args.beam)
        print(args.prompt + model.beam(args.prompt, args.length, args.beam, cache=cache))
        return 0
    pieces = model.generate(args.prompt, args.length, args.temperature, args.top_k,
                            args.top_p, args.seed, tuple(args.stop), args.stop_at_eos,
                            condition=args.condition, cache=cache)
    sys.stdout.write(args.prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def add_complete_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint or run folder of a language model")
    parser.add_argument("--prompt", required=True, help="text to complete")
    parser.add_argument("--k", type=int, default=5, help="completions to show")
    parser.add_argument("--words", type=int, default=1, help="words per completion")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    add_cache_arguments(parser)


def complete_command(args: argparse.Namespace) -> int:
    check_positive_int("--k", args.k)
    check_positive_int("--words", args.words)
    cache = cache_from_args(args)
    model = TrainedLanguageModel.load(args.model)
    for c in model.complete(args.prompt, args.k, args.words, cache=cache):
        shown = c.text.replace("\n", "\\n")  # one completion per line
        print(json.dumps(c._asdict()) if args.json else f"{c.probability:8.4f}  {shown}")
    return 0
