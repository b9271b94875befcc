"""Classifying real-valued sequences (many-to-one): e.g. an image read row by row.

``SequenceTask`` trains a ``SequenceClassifier`` with ``input_features`` on arrays of shape
(N, T, F) with integer labels. ``digits()`` loads scikit-learn's handwritten digits (1,797
8×8 images, shipped inside the package — nothing is downloaded) as 8-step sequences of 8
pixel rows: the offline stand-in that ``recur quickstart`` runs when IMDB is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from recur.models.classifier import ClassifierConfig, SequenceClassifier
from recur.tasks.sentiment import classification_metrics, classifier
from recur.training import Task, register_task
from recur.training.task import StepOutput


class SequenceBatch(NamedTuple):
    tokens: Tensor    # (B, T, F) float — named like text batches so models take either
    lengths: Tensor   # (B,)
    labels: Tensor    # (B,)


class LabelledSequences(NamedTuple):
    x: np.ndarray          # (N, T, F) float32
    y: np.ndarray          # (N,) int
    label_names: list[str]


def digits(seed: int = 0, valid_fraction: float = 0.2) -> tuple[LabelledSequences, LabelledSequences]:
    """scikit-learn's digits as (N, 8, 8) row sequences scaled to [0, 1], split with a seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)                    # (1797, 8, 8)
    y = bunch.target.astype(np.int64)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=valid_fraction, random_state=seed,
                                              stratify=y)
    names = [str(d) for d in range(10)]
    return LabelledSequences(x_tr, y_tr, names), LabelledSequences(x_va, y_va, names)


class SequenceTask(Task):
    """Fixed-length real-valued sequences → class, for the Trainer."""

    name = "sequences"

    def __init__(self, train: LabelledSequences, valid: LabelledSequences | None,
                 model: ClassifierConfig, batch_size: int = 32, seed: int = 0) -> None:
        if train.x.ndim != 3 or train.x.shape[2] != model.input_features:
            raise ValueError(f"train.x must have shape (N, T, {model.input_features}), got "
                             f"{train.x.shape}")
        self.train, self.valid, self.model_config = train, valid, model
        self.batch_size, self.seed = batch_size, seed

    def build_model(self) -> nn.Module:
        return SequenceClassifier(self.model_config)

    def _batches(self, data: LabelledSequences, order: np.ndarray):
        x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
        for start in range(0, len(order), self.batch_size):
            idx = torch.from_numpy(order[start : start + self.batch_size])
            xb = x[idx]
            yield SequenceBatch(xb, torch.full((len(idx),), xb.shape[1]), y[idx])

    def train_batches(self, epoch: int):
        rng = np.random.default_rng(self.seed * 100_003 + epoch)
        return self._batches(self.train, rng.permutation(len(self.train.y)))

    def valid_batches(self):
        if self.valid is None:
            return iter(())
        return self._batches(self.valid, np.arange(len(self.valid.y)))

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        logits = model(batch.tokens, batch.lengths)
        return StepOutput(classifier(model).loss(logits, batch.labels), len(batch.labels))

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        return classification_metrics(model, batches, self.train.label_names)

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "label_names": self.train.label_names}

    def files(self, folder: Path) -> None:
        pass


register_task("sequences", lambda configs, folder: SequenceClassifier(
    ClassifierConfig.from_dict(configs["model"])))
