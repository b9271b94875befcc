"""Evaluation metrics as plain functions of arrays (NumPy arrays or torch tensors).

Classification: ``accuracy``, ``confusion_matrix``, ``precision_recall_f1`` (per class,
macro and micro). Language models: ``perplexity``, ``bits_per_character`` from the mean
negative log-likelihood. Forecasting: ``mae``, ``rmse``, ``smape``, ``mase``.

Where scikit-learn has the metric the tests check these against it; undefined ratios
(a class never predicted, 0 / 0) count as 0, like sklearn's ``zero_division=0``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

ArrayLike = Any  # np.ndarray, torch.Tensor or a (nested) list of numbers


def _numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.is_floating_point():
            values = values.double()  # bf16 / fp16 have no NumPy dtype
        return values.numpy()
    return np.asarray(values)


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    true, pred = _numpy(y_true).reshape(-1), _numpy(y_pred).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same number of items, got {true.size} and {pred.size}"
        )
    if true.size == 0:
        raise ValueError("y_true and y_pred must not be empty")
    return true, pred


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, with 0 where the denominator is 0."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


# -- classification ---------------------------------------------------------------------------


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of items whose predicted class equals the true class."""
    true, pred = _pair(y_true, y_pred)
    return float(np.mean(true == pred))


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> np.ndarray:
    """(C, C) counts; row = true class, column = predicted class (sklearn's layout).

    Classes are the integers 0..C-1; C defaults to 1 + the largest label seen.
    """
    true, pred = _pair(y_true, y_pred)
    true, pred = true.astype(np.int64), pred.astype(np.int64)
    if min(true.min(), pred.min()) < 0:
        raise ValueError("labels must be integers >= 0")
    seen = int(max(true.max(), pred.max())) + 1
    if num_classes is None:
        num_classes = seen
    elif num_classes < seen:
        raise ValueError(f"num_classes must cover every label (>= {seen}), got {num_classes}")
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


class PRF(NamedTuple):
    """Precision, recall and F1: per class (C,) arrays, plus their macro and micro averages.

    ``macro_*`` is the unweighted mean over classes; ``micro_*`` pools every decision
    (for single-label classification micro precision = recall = F1 = accuracy).
    """

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    macro_precision: float
    macro_recall: float
    macro_f1: float
    micro_precision: float
    micro_recall: float
    micro_f1: float


def precision_recall_f1(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> PRF:
    """Per-class, macro and micro precision / recall / F1 of integer class labels."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(matrix).astype(float)  # (C,)
    predicted = matrix.sum(axis=0)  # (C,) column sums: items predicted as each class
    support = matrix.sum(axis=1)  # (C,) row sums: items truly in each class
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    micro_p = float(_ratio(tp.sum(), predicted.sum()))
    micro_r = float(_ratio(tp.sum(), support.sum()))
    micro_f1 = float(_ratio(2 * micro_p * micro_r, micro_p + micro_r))
    return PRF(
        precision,
        recall,
        f1,
        support,
        float(precision.mean()),
        float(recall.mean()),
        float(f1.mean()),
        micro_p,
        micro_r,
        micro_f1,
    )


# -- language models --------------------------------------------------------------------------


def perplexity(mean_nll: float) -> float:
    """exp(mean negative log-likelihood per token, in nats): the effective branching factor."""
    return math.exp(mean_nll) if mean_nll < 700 else math.inf


def bits_per_character(mean_nll: float) -> float:
    """Mean negative log-likelihood per character in bits (the nats / ln 2)."""
    return mean_nll / math.log(2)


# -- forecasting ------------------------------------------------------------------------------


def _floats(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    true, pred = _numpy(y_true).astype(float), _numpy(y_pred).astype(float)
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {true.shape} and {pred.shape}"
        )
    if true.size == 0:
        raise ValueError("y_true and y_pred must not be empty")
    return true, pred


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, mean |y - ŷ| over every element."""
    true, pred = _floats(y_true, y_pred)
    return float(np.mean(np.abs(true - pred)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, sqrt(mean (y - ŷ)²) over every element."""
    true, pred = _floats(y_true, y_pred)
    return float(np.sqrt(np.mean((true - pred) ** 2)))


def smape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Symmetric MAPE in percent, 100 · mean 2|y - ŷ| / (|y| + |ŷ|), in [0, 200].

    The M4 competition's definition; a term with y = ŷ = 0 counts as 0.
    """
    true, pred = _floats(y_true, y_pred)
    return float(100.0 * np.mean(_ratio(2.0 * np.abs(true - pred), np.abs(true) + np.abs(pred))))


def mase(y_true: ArrayLike, y_pred: ArrayLike, y_train: ArrayLike, m: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006), seasonal period ``m``.

    The forecast's MAE divided by the in-sample MAE of the seasonal naive forecast
    ŷ_t = y_{t-m} on the training series: below 1 beats the naive forecast.

    Args:
        y_true, y_pred: the forecast horizon, same shape.
        y_train: (N,) the training series the naive forecast is measured on, N > m.
        m: seasonal period (1: the plain naive forecast).
    """
    if isinstance(m, bool) or not isinstance(m, int) or m <= 0:
        raise ValueError(f"m must be a positive int, got {m!r}")
    train = _numpy(y_train).astype(float).reshape(-1)
    if train.size <= m:
        raise ValueError(f"y_train must have more than m = {m} values, got {train.size}")
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    if scale == 0:
        raise ValueError(
            "y_train is constant at lag m: the naive forecast is exact, so MASE is undefined"
        )
    return mae(y_true, y_pred) / float(scale)
