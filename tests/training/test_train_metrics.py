"""Metrics against scikit-learn where it has them, by hand where it does not."""

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from recur.training.metrics import (
    accuracy,
    bits_per_character,
    confusion_matrix,
    mae,
    mase,
    perplexity,
    precision_recall_f1,
    rmse,
    smape,
)

rng = np.random.default_rng(0)
Y_TRUE = rng.integers(0, 4, size=200)
Y_PRED = np.where(rng.random(200) < 0.6, Y_TRUE, rng.integers(0, 4, size=200))


def test_accuracy_and_confusion_matrix_match_sklearn():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(sk.accuracy_score(Y_TRUE, Y_PRED))
    np.testing.assert_array_equal(
        confusion_matrix(Y_TRUE, Y_PRED), sk.confusion_matrix(Y_TRUE, Y_PRED)
    )


def test_tensors_are_accepted_like_arrays():
    assert accuracy(torch.from_numpy(Y_TRUE), torch.from_numpy(Y_PRED)) == accuracy(Y_TRUE, Y_PRED)
    assert mae(torch.ones(3, dtype=torch.bfloat16), torch.zeros(3)) == 1.0


def test_precision_recall_f1_per_class_macro_micro_match_sklearn():
    prf = precision_recall_f1(Y_TRUE, Y_PRED)
    p, r, f, support = sk.precision_recall_fscore_support(Y_TRUE, Y_PRED, zero_division=0)
    np.testing.assert_allclose(prf.precision, p)
    np.testing.assert_allclose(prf.recall, r)
    np.testing.assert_allclose(prf.f1, f)
    np.testing.assert_array_equal(prf.support, support)
    for average in ("macro", "micro"):
        p, r, f, _ = sk.precision_recall_fscore_support(Y_TRUE, Y_PRED, average=average)
        assert getattr(prf, f"{average}_precision") == pytest.approx(p)
        assert getattr(prf, f"{average}_recall") == pytest.approx(r)
        assert getattr(prf, f"{average}_f1") == pytest.approx(f)


def test_class_never_predicted_counts_as_zero_like_sklearn_zero_division_0():
    y_true, y_pred = [0, 1, 2, 2], [0, 1, 1, 1]  # class 2 is never predicted
    prf = precision_recall_f1(y_true, y_pred, num_classes=4)  # class 3 never appears
    p, r, f, _ = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2, 3], zero_division=0
    )
    np.testing.assert_allclose(prf.precision, p)
    np.testing.assert_allclose(prf.recall, r)
    np.testing.assert_allclose(prf.f1, f)
    assert confusion_matrix(y_true, y_pred, num_classes=4).shape == (4, 4)


def test_regression_errors_match_sklearn():
    y = rng.normal(size=(50, 3))
    y_hat = y + rng.normal(scale=0.3, size=(50, 3))
    assert mae(y, y_hat) == pytest.approx(sk.mean_absolute_error(y.ravel(), y_hat.ravel()))
    assert rmse(y, y_hat) == pytest.approx(sk.root_mean_squared_error(y.ravel(), y_hat.ravel()))


def test_smape_by_hand():
    # terms: 2·|100-110|/(100+110), 2·|50-40|/(50+40), and 0/0 → 0
    expected = 100 / 3 * (20 / 210 + 20 / 90 + 0)
    assert smape([100, 50, 0], [110, 40, 0]) == pytest.approx(expected)
    assert smape([1, 2], [1, 2]) == 0.0
    assert smape([1.0], [-1.0]) == 200.0


def test_mase_by_hand_with_seasonal_period():
    train = np.array([1, 3, 2, 4, 3, 5, 4, 6], dtype=float)
    # naive lag-1 in-sample MAE: |3-1|,|2-3|,|4-2|,... = mean(2,1,2,1,2,1,2) = 11/7
    assert mase([7, 8], [6, 8], train) == pytest.approx(0.5 / (11 / 7))
    # seasonal naive, m = 2: |2-1|,|4-3|,... all 1
    assert mase([7, 8], [6, 8], train, m=2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="y_train must have more than m = 8 values, got 8"):
        mase([1], [1], train, m=8)


def test_perplexity_and_bits_per_character():
    assert perplexity(math.log(5)) == pytest.approx(5.0)  # a uniform guess among 5
    assert bits_per_character(math.log(2)) == pytest.approx(1.0)
    assert perplexity(1000.0) == math.inf


def test_mismatched_lengths_are_named():
    with pytest.raises(ValueError, match="same number of items, got 3 and 2"):
        accuracy([1, 2, 3], [1, 2])
