"""Sentiment analysis (many-to-one): text → tokens → SequenceClassifier → class.

The task the Trainer runs, the presets, and the CLI verbs built on them:

    recur train sentiment --train PATH [--valid PATH] --out DIR [--preset seed|best]
    recur evaluate DIR --data PATH [--json]
    recur predict DIR "text" ... | --input FILE
    recur quickstart

Presets:
* ``seed`` — the lecture notes' Keras model exactly: TextVectorization(max_tokens=1000,
  output_sequence_length=100) → Embedding(1001, 128) → LSTM(64) → Dense(64, relu) →
  Dense(1, sigmoid); Adam 1e-3, binary cross-entropy, batch 32, 10 epochs; 181,761
  parameters. (Keras' Embedding has 1001 rows for a 1000-word vocabulary; the extra row is
  never indexed, and kept so the parameter count matches the notes.)
* ``best`` — recur's strongest recurrent model within a 20-minute run on a 2-core CPU; its
  measured validation accuracy and the exact command are in docs/sentiment.md.

The validation split is carved from the training data with a fixed seed (stratified);
sequences are truncated to ``max_length`` tokens (head, tail, or head + tail) and batched
with their lengths, so padding never changes a prediction.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.data.batching import BucketBatcher, make_batches, restore_order
from recur.data.batching import encode_texts as encode_and_truncate_all
from recur.data.text import (
    SENTIMENT_LABEL_NAMES,
    LabelledTexts,
    read_labelled,
    split_train_valid,
)
from recur.data.vocab import SubwordTokenizer, Tokenizer, WordTokenizer, load_tokenizer
from recur.diagnostics import Attribution, GateRecording
from recur.models.classifier import ClassifierConfig, SequenceClassifier
from recur.tasks import load_for_backend
from recur.training import Task, TrainConfig, TrainingDiverged, register_task, run_training
from recur.training.checkpoint import load_checkpoint
from recur.training.config import add_ema_argument
from recur.training.metrics import accuracy, confusion_matrix, precision_recall_f1
from recur.training.task import StepOutput

TOKENIZERS = ("word", "bpe", "wordpiece")
TRUNCATIONS = ("head", "tail", "head+tail")

EXAMPLES = (
    "i loved it! highly recommend it to everyone looking for a great movie to watch.",
    "this was awful and stupid! i hated it so much, it was just the absolute worst.",
    "this movie is awful and i love it.",
    "this movie is awful but i love it.",
)
"""The lecture notes' four example sentences."""


@dataclass(frozen=True)
class TextDataConfig:
    """How texts become batches (saved in the checkpoint's config.json)."""

    tokenizer: str = "word"           # word | bpe | wordpiece
    max_tokens: int = 1000            # vocabulary size, pad and OOV included (Keras' rule)
    min_freq: int = 1
    max_length: int = 100             # tokens kept per text
    truncation: str = "head"          # head | tail | head+tail
    batch_size: int = 32
    bucket: bool = False              # group similar lengths into a batch (less padding)
    valid_fraction: float = 0.1       # carved from train when no --valid is given
    split_seed: int = 0

    def __post_init__(self) -> None:
        check_choice("tokenizer", self.tokenizer, TOKENIZERS)
        check_choice("truncation", self.truncation, TRUNCATIONS)
        for name in ("max_tokens", "min_freq", "max_length", "batch_size"):
            check_positive_int(name, getattr(self, name))
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}")

    @classmethod
    def from_dict(cls, data: dict) -> TextDataConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Preset:
    data: TextDataConfig
    model: dict[str, Any]          # ClassifierConfig fields but num_classes; vocab_size
                                   # defaults to the tokenizer's
    training: TrainConfig


PRESETS: dict[str, Preset] = {
    "seed": Preset(
        TextDataConfig(tokenizer="word", max_tokens=1000, max_length=100, batch_size=32,
                       bucket=True),
        {k: v for k, v in ClassifierConfig.seed().to_dict().items() if k != "num_classes"},
        TrainConfig(epochs=10, optimizer="adam", lr=1e-3, monitor="accuracy", mode="max"),
    ),
    "best": Preset(
        TextDataConfig(tokenizer="word", max_tokens=30_000, min_freq=2, max_length=640,
                       truncation="head+tail", batch_size=64, bucket=True),
        {"embed_dim": 128, "cell": "lstm", "hidden_size": 128, "num_layers": 1,
         "bidirectional": True, "pooling": "max", "embed_dropout": 0.3, "head_sizes": [64],
         "head_dropout": 0.3, "cell_options": {}},
        TrainConfig(epochs=6, optimizer="adamw", lr=2e-3, weight_decay=1e-4, clip_norm=1.0,
                    schedule="cosine", warmup_steps=100, monitor="accuracy", mode="max",
                    time_budget_min=20.0),
    ),
}


def build_tokenizer(config: TextDataConfig) -> Tokenizer:
    if config.tokenizer == "word":
        return WordTokenizer(max_tokens=config.max_tokens, min_freq=config.min_freq)
    return SubwordTokenizer(kind=config.tokenizer, vocab_size=config.max_tokens,
                            min_freq=max(config.min_freq, 2))


def encode_texts(tokenizer: Tokenizer, texts: list[str], config: TextDataConfig) -> list[list[int]]:
    return encode_and_truncate_all(tokenizer, texts, config.max_length, config.truncation)


class Prediction(NamedTuple):
    text: str
    label: str
    probability: float          # of the predicted label
    probabilities: list[float]  # of every class, in label order


class Explanation(NamedTuple):
    prediction: Prediction
    tokens: list[str]                # the model's input tokens, after truncation
    ids: list[int]                   # their ids
    integrated_gradients: Attribution
    occlusion: Attribution
    gates: GateRecording             # last layer, forward direction


class SentimentTask(Task):
    """Text classification for the Trainer: encoded texts, batches, loss and metrics.

    Args:
        train, valid: labelled texts (``valid`` may be None: nothing to select on).
        tokenizer: a fitted tokenizer.
        data: the text pipeline config.
        model: the classifier config (its vocab_size must cover the tokenizer's).
        seed: seeds the per-epoch shuffle.
    """

    name = "sentiment"

    def __init__(self, train: LabelledTexts, valid: LabelledTexts | None, tokenizer: Tokenizer,
                 data: TextDataConfig, model: ClassifierConfig, seed: int = 0) -> None:
        if model.vocab_size < tokenizer.vocab_size:
            raise ValueError(f"model vocab_size must be >= the tokenizer's "
                             f"{tokenizer.vocab_size}, got {model.vocab_size}")
        self.tokenizer, self.data, self.model_config, self.seed = tokenizer, data, model, seed
        self.label_names = list(train.label_names)
        self.train_ids = encode_texts(tokenizer, train.texts, data)
        self.train_labels = list(train.labels)
        self.valid_ids = encode_texts(tokenizer, valid.texts, data) if valid else []
        self.valid_labels = list(valid.labels) if valid else []

    def build_model(self) -> nn.Module:
        return SequenceClassifier(self.model_config)

    def batches(self, ids: list[list[int]], labels: list[int], shuffle: bool, seed: int = 0):
        # A sized batcher (one pass = one epoch for this seed), so schedules know its length.
        return BucketBatcher(ids, labels, batch_size=self.data.batch_size, shuffle=shuffle,
                             seed=seed, bucket=self.data.bucket, pad_id=self.tokenizer.pad_id)

    def train_batches(self, epoch: int):
        return self.batches(self.train_ids, self.train_labels, True, self.seed * 100_003 + epoch)

    def valid_batches(self):
        return self.batches(self.valid_ids, self.valid_labels, False)

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        logits = model(batch.tokens, batch.lengths)
        return StepOutput(classifier(model).loss(logits, batch.labels), len(batch.labels))

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        return classification_metrics(model, batches, self.label_names)

    def predict(self, model: nn.Module, batch: Any):
        return classifier(model).probabilities(model(batch.tokens, batch.lengths))

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "data": asdict(self.data),
                "label_names": self.label_names}

    def files(self, folder: Path) -> None:
        self.tokenizer.save(folder)


def classifier(model: nn.Module) -> SequenceClassifier:
    """The SequenceClassifier inside ``model`` (unwrapping DistributedDataParallel)."""
    return getattr(model, "module", model)


@torch.no_grad()
def classification_metrics(model: nn.Module, batches, label_names: list[str]) -> dict[str, Any]:
    """Loss, accuracy, per-class and macro precision/recall/F1, and the confusion matrix."""
    total_loss, count, y_true, y_prob = 0.0, 0, [], []
    net = classifier(model)
    for batch in batches:
        logits = model(batch.tokens, batch.lengths)
        total_loss += float(net.loss(logits, batch.labels)) * len(batch.labels)
        count += len(batch.labels)
        y_true.append(batch.labels.cpu().long())
        y_prob.append(net.probabilities(logits).cpu())
    if count == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    true = torch.cat(y_true).numpy()
    pred = torch.cat(y_prob).argmax(-1).numpy()
    C = len(label_names)
    prf = precision_recall_f1(true, pred, num_classes=C)
    metrics: dict[str, Any] = {"loss": total_loss / count, "accuracy": accuracy(true, pred),
                               "macro_f1": float(np.mean(prf.f1))}
    for c, name in enumerate(label_names):
        metrics[f"precision_{name}"] = float(prf.precision[c])
        metrics[f"recall_{name}"] = float(prf.recall[c])
        metrics[f"f1_{name}"] = float(prf.f1[c])
    metrics["confusion_matrix"] = confusion_matrix(true, pred, num_classes=C).tolist()
    metrics["count"] = count
    return metrics


def _load_model(configs: dict[str, Any], folder: Path) -> nn.Module:
    return SequenceClassifier(ClassifierConfig.from_dict(configs["model"]))


register_task("sentiment", _load_model)


# -- using a trained model ---------------------------------------------------------------------


class SentimentModel:
    """A trained classifier with its tokenizer: ``SentimentModel.load(DIR).predict(texts)``."""

    def __init__(self, model: SequenceClassifier, tokenizer: Tokenizer, data: TextDataConfig,
                 label_names: list[str]) -> None:
        self.model, self.tokenizer, self.data = model.eval(), tokenizer, data
        self.label_names = label_names

    @classmethod
    def load(cls, path: str | Path) -> SentimentModel:
        checkpoint = load_checkpoint(path, task="sentiment")
        configs = checkpoint.config["configs"]
        return cls(checkpoint.model, load_tokenizer(checkpoint.folder),
                   TextDataConfig.from_dict(configs["data"]), list(configs["label_names"]))

    def batches(self, texts: list[str], labels: list[int] | None = None):
        ids = encode_texts(self.tokenizer, texts, self.data)
        return make_batches(ids, labels if labels is not None else [0] * len(ids),
                            batch_size=64, shuffle=False, seed=0, bucket=True,
                            pad_id=self.tokenizer.pad_id)

    @torch.no_grad()
    def predict(self, texts: list[str]) -> list[Prediction]:
        """One Prediction per text, in input order. An empty text is read as one padding
        token, so it gets the model's prior-like answer rather than an error."""
        probs, index = [], []
        for batch in self.batches(list(texts)):
            probs.append(self.probabilities(batch.tokens, batch.lengths))
            index.append(batch.index)
        ordered = restore_order(torch.cat(probs), torch.cat(index)).tolist() if probs else []
        out = []
        for text, p in zip(texts, ordered, strict=True):
            best = int(np.argmax(p))
            out.append(Prediction(text, self.label_names[best], p[best], p))
        return out

    def explain(self, text: str, *, steps: int = 64) -> Explanation:
        """Why the model decided as it did: per-token integrated gradients and occlusion
        scores for the predicted label (positive = evidence for it), and the gates."""
        from recur.diagnostics import integrated_gradients, occlusion, record_gates

        ids = [i for i in encode_texts(self.tokenizer, [text], self.data)[0]
               if i != self.tokenizer.pad_id] or [self.tokenizer.pad_id]
        tokens = torch.tensor(ids, dtype=torch.long)
        prediction = self.predict([text])[0]
        target = self.label_names.index(prediction.label)
        ig = integrated_gradients(self.model, tokens, target=target, steps=steps)
        occ = occlusion(self.model, tokens, replacement=self.tokenizer.pad_id, target=target)
        gates = record_gates(self.model, (tokens.unsqueeze(0), torch.tensor([len(ids)])))
        words = [self.tokenizer.id_to_token(i) for i in ids]
        return Explanation(prediction, words, ids, ig, occ, gates)

    def probabilities(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> (B, C) class probabilities (the onnx backend,
        ``recur.export.OnnxSentimentModel``, overrides this)."""
        return self.model.probabilities(self.model(tokens, lengths))

    @torch.no_grad()
    def evaluate(self, data: LabelledTexts) -> dict[str, Any]:
        if list(data.label_names)[: len(self.label_names)] != self.label_names[: data.num_classes]:
            raise ValueError(f"data labels {data.label_names} do not match the model's "
                             f"{self.label_names}")
        return classification_metrics(self.model, self.batches(data.texts, data.labels),
                                      self.label_names)


# -- CLI ---------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", help="labelled training data: aclImdb folder, .jsonl(.gz) "
                        "or .csv/.tsv (default: IMDB from $RECUR_DATA)")
    parser.add_argument("--valid", help="labelled validation data (default: carve "
                        "valid_fraction of --train with a fixed seed)")
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="seed")
    parser.add_argument("--cell", choices=sorted(CELLS), help="recurrent cell")
    parser.add_argument("--hidden-size", type=int)
    parser.add_argument("--num-layers", type=int)
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--pooling", choices=["last", "mean", "max", "attention"])
    parser.add_argument("--tokenizer", choices=TOKENIZERS)
    parser.add_argument("--max-tokens", type=int, help="vocabulary size")
    parser.add_argument("--max-length", type=int, help="tokens kept per text")
    parser.add_argument("--truncation", choices=TRUNCATIONS)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    parser.add_argument("--clip-norm", type=float)
    add_ema_argument(parser)
    parser.add_argument("--time-budget", type=float, metavar="MIN",
                        help="stop cleanly after MIN minutes, keeping the best model")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, metavar="N",
                        help="use only N training examples (quick experiments)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard event files to OUT/tensorboard")


def configs_from_args(args: argparse.Namespace) -> tuple[TextDataConfig, dict, TrainConfig]:
    preset = PRESETS[args.preset]
    data_overrides = {"tokenizer": args.tokenizer, "max_tokens": args.max_tokens,
                      "max_length": args.max_length, "truncation": args.truncation,
                      "batch_size": args.batch_size}
    data = replace(preset.data, **{k: v for k, v in data_overrides.items() if v is not None})
    model_overrides = {"cell": args.cell, "hidden_size": args.hidden_size,
                       "num_layers": args.num_layers, "bidirectional": args.bidirectional,
                       "pooling": args.pooling}
    model = dict(preset.model) | {k: v for k, v in model_overrides.items() if v is not None}
    if args.max_tokens is not None or args.tokenizer is not None:
        model.pop("vocab_size", None)  # then the embedding follows the tokenizer
    if args.cell is not None and args.cell != preset.model["cell"]:
        model["cell_options"] = {}  # the preset's cell options belong to its own cell
    train_overrides = {"epochs": args.epochs, "lr": args.lr, "optimizer": args.optimizer,
                       "clip_norm": args.clip_norm, "time_budget_min": args.time_budget,
                       "ema_decay": args.ema,
                       "precision": args.precision, "device": args.device,
                       "seed": args.seed, "quiet": args.quiet or None,
                       "batch_size": data.batch_size}
    training = replace(preset.training,
                       **{k: v for k, v in train_overrides.items() if v is not None})
    return data, model, training


def read_sentiment(path: str | Path) -> LabelledTexts:
    """``read_labelled``, with integer labels 0/1 named negative/positive (IMDB's rule)."""
    data = read_labelled(path)
    if list(data.label_names) == ["0", "1"]:
        data = replace(data, label_names=list(SENTIMENT_LABEL_NAMES))
    return data


def load_training_data(args: argparse.Namespace, data: TextDataConfig):
    from recur.data.text import read_imdb

    full = read_sentiment(args.train) if args.train else read_imdb()
    if args.valid:
        train, valid = full, read_sentiment(args.valid)
    else:
        train, valid = split_train_valid(full, data.valid_fraction, data.split_seed)
    if args.limit is not None:
        check_positive_int("--limit", args.limit)
        train = train.subset(range(min(args.limit, len(train))))
    return train, valid


def train(train_data: LabelledTexts, valid_data: LabelledTexts | None, out: str | Path,
          data: TextDataConfig, model: dict, training: TrainConfig, *,
          overwrite: bool = False, resume: bool = False, tensorboard: bool = False, say=print):
    """Fit a tokenizer and a classifier; returns (FitResult, SentimentModel of the best)."""
    torch.manual_seed(training.seed)
    tokenizer = build_tokenizer(data).fit(train_data.texts)
    model = {"vocab_size": tokenizer.vocab_size} | model
    config = ClassifierConfig(num_classes=train_data.num_classes, **model)
    task = SentimentTask(train_data, valid_data, tokenizer, data, config, seed=training.seed)
    say(f"data: {len(train_data):,} train / {len(valid_data) if valid_data else 0:,} valid "
        f"texts, vocabulary {tokenizer.vocab_size:,}, max_length {data.max_length}")
    result = run_training(task, training, out, overwrite=overwrite, resume=resume,
                          tensorboard=tensorboard)
    return result, SentimentModel.load(out)


def train_command(args: argparse.Namespace) -> int:
    data, model, training = configs_from_args(args)
    train_data, valid_data = load_training_data(args, data)
    try:
        result, best = train(train_data, valid_data, args.out, data, model, training,
                             overwrite=args.overwrite, resume=args.resume,
                             tensorboard=args.tensorboard)
    except TrainingDiverged as error:
        print(f"recur train: training diverged: {error}; {args.out}/last keeps the last good "
              "checkpoint (try a lower --lr or --clip-norm)", file=sys.stderr)
        return 1
    metrics = best.evaluate(valid_data) if valid_data else {}
    print(f"saved to {args.out}; validation accuracy {metrics.get('accuracy', float('nan')):.4f}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    model = SentimentModel.load(args.model)
    metrics = model.evaluate(read_sentiment(args.data))
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(f"accuracy {metrics['accuracy']:.4f}   loss {metrics['loss']:.4f}   "
          f"macro F1 {metrics['macro_f1']:.4f}   ({metrics['count']:,} texts)")
    for name in model.label_names:
        print(f"  {name:>10}: precision {metrics[f'precision_{name}']:.4f}  "
              f"recall {metrics[f'recall_{name}']:.4f}  F1 {metrics[f'f1_{name}']:.4f}")
    print("confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(model.label_names, metrics["confusion_matrix"], strict=True):
        print(f"  {name:>10} " + " ".join(f"{v:>7}" for v in row))
    return 0


def predict_command(args: argparse.Namespace) -> int:
    texts = list(args.texts)
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise FileNotFoundError(f"--input {path} does not exist")
        texts += path.read_text(encoding="utf-8").splitlines()
    if not texts:
        raise ValueError("give texts to classify as arguments or --input FILE, got none")
    model = load_for_backend(args, SentimentModel.load, "OnnxSentimentModel")
    for p in model.predict(texts):
        if args.json:
            print(json.dumps(p._asdict()))
        else:
            print(f"{p.label:>8}  {p.probability:.3f}  {p.text}")
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    """Token attributions per text; with --out, figures of them, the gates and the gradient
    flow (a folder of PNGs, or one self-contained HTML report for a .html path)."""
    from recur.diagnostics import gradient_flow, plot_attributions, plot_gates, plot_gradient_flow
    from recur.diagnostics.report import Report

    if not args.text:
        raise ValueError("give the text to inspect with --text, got none")
    model = SentimentModel.load(args.model)
    report = (Report(args.out, title=f"recur inspect {args.model}", model=model.model)
              if args.out else None)
    with report or contextlib.nullcontext():
        for n, text in enumerate(args.text):
            e = model.explain(text, steps=args.steps)
            table = format_explanation(e)
            print(table)
            if report is None:
                continue
            p = e.prediction
            stem = f"text{n}"
            attributions = plot_attributions(
                e.tokens, [e.integrated_gradients, e.occlusion],
                report.figure(f"{stem}-attributions.png"),
                title=f"{p.label} {p.probability:.3f}: evidence per token")
            gates = plot_gates(e.gates, report.figure(f"{stem}-gates.png"), tokens=e.tokens)
            ids = torch.tensor(e.ids).unsqueeze(0)
            target = torch.tensor([model.label_names.index(p.label)])
            flow = gradient_flow(model.model, (ids, torch.tensor([ids.shape[1]])),
                                 loss_fn=lambda logits, t=target: model.model.loss(logits, t),
                                 jacobian=None if model.model.config.hidden_size > 256 else "spectral")
            flow_png = plot_gradient_flow({model.model.config.cell: flow},
                                          report.figure(f"{stem}-gradient-flow.png"),
                                          title="‖∂L/∂h_t‖ for the predicted label")
            report.add(f"text {n}: {text}", table, [
                ("token attributions: integrated gradients and occlusion (red: for the "
                 "predicted label, blue: against)", attributions),
                ("gates and states of the last layer over the tokens", gates),
                ("gradient flow through time: ‖∂L/∂h_t‖ of the predicted label's loss, and "
                 "the per-step Jacobian norms", flow_png)])
        if report is not None:
            for path in report.close():
                print(f"wrote {path}")
    return 0


def format_explanation(e: Explanation) -> str:
    """The per-token table ``recur inspect`` prints for one text."""
    p = e.prediction
    lines = [f"{p.label} {p.probability:.3f}: {p.text}",
             f"  {'token':<16} {'integrated grad':>15} {'occlusion':>10}   "
             f"(positive = evidence for {p.label!r}; IG sum error "
             f"{e.integrated_gradients.delta:+.1e})"]
    for word, ig, occ in zip(e.tokens, e.integrated_gradients.scores.tolist(),
                             e.occlusion.scores.tolist(), strict=True):
        lines.append(f"  {word:<16} {ig:>15.3f} {occ:>10.3f}")
    return "\n".join(lines)


# -- quickstart --------------------------------------------------------------------------------


def add_quickstart_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="IMDB folder (default: $RECUR_DATA/imdb, then the "
                        "shared data folder, then ~/.cache/recur/datasets/imdb)")
    parser.add_argument("--out", default="runs/quickstart", help="run folder (replaced)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's 10")
    parser.add_argument("--download", action="store_true",
                        help="download IMDB if it is missing, without asking")
    parser.add_argument("--quiet", action="store_true")


def quickstart(args: argparse.Namespace) -> int:
    from recur.tasks.quickstart import run

    return run(args)

