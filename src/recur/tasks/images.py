"""Sequential images: scikit-learn's handwritten digits read by an RNN, with or without a CNN.

    recur train digits --mode row|pixel|cnn|mixed [--cell lstm] --out DIR
    recur evaluate DIR [--json]          accuracy on the fixed test split

The data are the 1,797 8×8 digits that ship inside scikit-learn (nothing is downloaded),
pixels scaled to [0, 1], split once: stratified, 20% test, seed 0 (1,437 train / 360 test;
``recur.tasks.sequences.digits``). The test split is never used to pick anything: the
Trainer's validation is a stratified 10% of the training split (seed 0), and ``evaluate``
reports the test split.

Modes:
* ``row``: 8 steps of 8 pixels → ``SequenceClassifier`` (T = 8).
* ``pixel``: 64 steps of 1 pixel → ``SequenceClassifier`` (T = 64, the classic
  long-sequence test; ``--cell elman --irnn`` is Le et al.'s identity-initialised ReLU RNN).
* ``cnn``: Conv2d ×2 → rows read by a Recurrent layer ("RNN after CNN", ``ConvRecurrent``).
* ``mixed``: a conv front end → a convolutional GRU over the rows (``ConvRecurrent``).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from torch import nn

from recur.cells import CELLS
from recur.models.classifier import ClassifierConfig, SequenceClassifier
from recur.models.conv import ConvRecurrent, ConvRecurrentConfig
from recur.tasks.sentiment import classification_metrics
from recur.tasks.sequences import LabelledSequences, SequenceTask, digits
from recur.training import TrainConfig, Trainer, register_task
from recur.training.checkpoint import load_checkpoint
from recur.training.config import add_ema_argument

MODES = ("row", "pixel", "cnn", "mixed")
EVALUATE_NEEDS_DATA = False  # evaluate uses the fixed digits test split
SPLIT = {"test_fraction": 0.2, "seed": 0, "valid_fraction_of_train": 0.1, "valid_seed": 0}


def digit_splits(mode: str) -> tuple[LabelledSequences, LabelledSequences, LabelledSequences]:
    """(train, valid, test) in the layout the mode reads: (N, 8, 8) or (N, 64, 1)."""
    train_full, test = digits(seed=SPLIT["seed"], valid_fraction=SPLIT["test_fraction"])
    x_tr, x_va, y_tr, y_va = train_test_split(
        train_full.x, train_full.y, test_size=SPLIT["valid_fraction_of_train"],
        random_state=SPLIT["valid_seed"], stratify=train_full.y)
    names = train_full.label_names
    parts = [LabelledSequences(x_tr, y_tr, names), LabelledSequences(x_va, y_va, names), test]
    if mode == "pixel":
        parts = [LabelledSequences(p.x.reshape(len(p.x), 64, 1), p.y, names) for p in parts]
    return parts[0], parts[1], parts[2]


def build(mode: str, model: dict) -> nn.Module:
    if mode in ("cnn", "mixed"):
        return ConvRecurrent(ConvRecurrentConfig.from_dict(model))
    return SequenceClassifier(ClassifierConfig.from_dict(model))


class DigitsTask(SequenceTask):
    """``SequenceTask`` over the digits in one of the four modes."""

    name = "digits"

    def __init__(self, mode: str, model: dict, train: LabelledSequences,
                 valid: LabelledSequences, batch_size: int = 32, seed: int = 0) -> None:
        self.mode, self.model_dict = mode, model
        self.train, self.valid = train, valid
        self.batch_size, self.seed = batch_size, seed

    def build_model(self) -> nn.Module:
        return build(self.mode, self.model_dict)

    def configs(self) -> dict[str, Any]:
        return {"mode": self.mode, "model": self.model_dict, "split": SPLIT,
                "label_names": self.train.label_names}


register_task("digits", lambda configs, folder: build(configs["mode"], configs["model"]))


def model_config(mode: str, cell: str, hidden_size: int, irnn: bool) -> dict:
    if mode in ("cnn", "mixed"):
        return ConvRecurrentConfig(num_classes=10, height=8, width=8,
                                   conv="2d" if mode == "cnn" else "mixed",
                                   channels=(16, 32), cell=cell, hidden_size=hidden_size
                                   ).to_dict()
    options: dict = {}
    if irnn:
        if cell != "elman":
            raise ValueError(f"--irnn is the identity-initialised ReLU Elman RNN: use --cell "
                             f"elman, got --cell {cell}")
        options = {"activation": "relu", "init": "identity"}
    features = 1 if mode == "pixel" else 8
    return ClassifierConfig(vocab_size=0, num_classes=10, input_features=features,
                            embed_dim=32 if mode == "pixel" else 64, cell=cell,
                            hidden_size=hidden_size, head_sizes=(),
                            cell_options=options).to_dict()


def evaluate_split(model: nn.Module, data: LabelledSequences) -> dict[str, Any]:
    task = SequenceTask.__new__(SequenceTask)
    task.batch_size = 256
    return classification_metrics(model.eval(), task._batches(data, np.arange(len(data.y))),
                                  data.label_names)


# -- CLI ---------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    parser.add_argument("--irnn", action="store_true",
                        help="identity-initialised ReLU Elman RNN (with --cell elman)")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clip-norm", type=float, default=1.0)
    add_ema_argument(parser)
    parser.add_argument("--time-budget", type=float, metavar="MIN")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def train_command(args: argparse.Namespace) -> int:
    train, valid, test = digit_splits(args.mode)
    model = model_config(args.mode, args.cell, args.hidden_size, args.irnn)
    task = DigitsTask(args.mode, model, train, valid, args.batch_size, args.seed)
    steps = args.epochs * math.ceil(len(train.y) / args.batch_size)  # for the cosine schedule
    config = TrainConfig(epochs=args.epochs, max_steps=steps, optimizer="adam", lr=args.lr,
                         clip_norm=args.clip_norm, schedule="cosine", batch_size=args.batch_size,
                         seed=args.seed, time_budget_min=args.time_budget, ema_decay=args.ema,
                         monitor="accuracy", mode="max", device="cpu", quiet=args.quiet)
    result = Trainer(task, config, args.out, overwrite=args.overwrite).fit()
    best = load_checkpoint(args.out, task="digits").model
    metrics = evaluate_split(best, test)
    print(f"saved to {args.out} ({result.stop_reason}); validation accuracy "
          f"{result.best_metric:.4f}; test accuracy {metrics['accuracy']:.4f} "
          f"({metrics['count']} images)")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    checkpoint = load_checkpoint(args.model, task="digits")
    if getattr(args, "data", None):
        raise ValueError("a digits model is evaluated on the fixed test split; drop --data")
    mode = checkpoint.config["configs"]["mode"]
    _, _, test = digit_splits(mode)
    metrics = evaluate_split(checkpoint.model, test) | {"mode": mode, "split": SPLIT}
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{mode}: test accuracy {metrics['accuracy']:.4f} ({metrics['count']} images), "
              f"macro F1 {metrics['macro_f1']:.4f}")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    raise ValueError(f"{args.model} is a digits model: use `recur evaluate {args.model}`")
