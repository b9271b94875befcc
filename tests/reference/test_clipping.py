"""Gradient clipping: by global norm (direction kept, length bounded) and by value."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from recur.reference import clip_by_norm, clip_by_value, global_norm


def make_grads(scale: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"weight_ih": (15, 3), "weight_hh": (15, 5), "bias_ih": (15,), "bias_hh": (15,)}
    return {name: scale * rng.normal(size=shape) for name, shape in shapes.items()}


def norm_of_all(grads: dict[str, np.ndarray]) -> float:
    return float(np.linalg.norm(np.concatenate([g.ravel() for g in grads.values()])))


def test_norm_clipping_rescales_to_max_norm_when_above():
    grads = make_grads(scale=10.0)
    clipped, norm = clip_by_norm(grads, max_norm=1.0)
    assert norm == pytest.approx(norm_of_all(grads), rel=1e-12)
    assert norm > 1.0
    assert norm_of_all(clipped) == pytest.approx(1.0, rel=1e-12)
    for name in grads:  # one common factor: the direction is kept
        np.testing.assert_allclose(clipped[name] * norm, grads[name], rtol=1e-12)


def test_norm_clipping_leaves_gradients_below_max_norm_unchanged():
    grads = make_grads(scale=0.01)
    clipped, norm = clip_by_norm(grads, max_norm=1.0)
    assert norm < 1.0
    for name in grads:
        np.testing.assert_array_equal(clipped[name], grads[name])


def test_clipping_returns_new_arrays_and_leaves_its_input_alone():
    grads = make_grads(scale=10.0)
    saved = {name: g.copy() for name, g in grads.items()}
    for clipped, _ in (clip_by_norm(grads, 1.0), clip_by_value(grads, 0.5)):
        for name in grads:
            assert not np.shares_memory(clipped[name], grads[name])
            np.testing.assert_array_equal(grads[name], saved[name])


def test_value_clipping_bounds_every_entry_and_keeps_the_rest():
    grads = make_grads(scale=2.0)
    clipped, norm = clip_by_value(grads, limit=0.5)
    assert norm == pytest.approx(norm_of_all(grads), rel=1e-12)  # the norm before clipping
    for name, g in grads.items():
        assert np.all(np.abs(clipped[name]) <= 0.5)
        inside = np.abs(g) <= 0.5
        np.testing.assert_array_equal(clipped[name][inside], g[inside])
        np.testing.assert_array_equal(clipped[name][~inside], 0.5 * np.sign(g[~inside]))


@pytest.mark.parametrize("scale", [10.0, 0.01])
def test_norm_clipping_matches_torch_clip_grad_norm(scale):
    grads = make_grads(scale)
    tensors = [torch.tensor(g, requires_grad=True) for g in grads.values()]
    for tensor, g in zip(tensors, grads.values(), strict=True):
        tensor.grad = torch.tensor(g)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm=1.0)
    clipped, norm = clip_by_norm(grads, max_norm=1.0)
    assert norm == pytest.approx(torch_norm.item(), rel=1e-12)
    # torch divides by ‖g‖ + 1e-6 where the lecture divides by ‖g‖: equal to ~1e-7 relative
    for tensor, ours in zip(tensors, clipped.values(), strict=True):
        np.testing.assert_allclose(ours, tensor.grad.numpy(), rtol=1e-6, atol=0)


def test_value_clipping_matches_torch_clip_grad_value():
    grads = make_grads(scale=2.0)
    tensors = [torch.tensor(g, requires_grad=True) for g in grads.values()]
    for tensor, g in zip(tensors, grads.values(), strict=True):
        tensor.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tensors, clip_value=0.5)
    clipped, _ = clip_by_value(grads, limit=0.5)
    for tensor, ours in zip(tensors, clipped.values(), strict=True):
        np.testing.assert_array_equal(ours, tensor.grad.numpy())


def test_global_norm_is_the_norm_of_all_gradients_as_one_vector():
    grads = make_grads(scale=1.0)
    assert global_norm(grads) == pytest.approx(norm_of_all(grads), rel=1e-12)
    assert global_norm(grads) > max(np.linalg.norm(g) for g in grads.values())


def test_norm_clipping_refuses_non_finite_gradients():
    grads = make_grads(scale=1.0)
    grads["bias_hh"][0] = np.inf
    with pytest.raises(ValueError, match=r"grads must be finite.*got global norm inf"):
        clip_by_norm(grads, 1.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1", True, None])
def test_clipping_thresholds_must_be_positive_finite_numbers(bad):
    grads = make_grads(scale=1.0)
    expected = re.escape(f"must be a positive finite number, got {bad!r}")
    with pytest.raises(ValueError, match=f"max_norm {expected}"):
        clip_by_norm(grads, bad)
    with pytest.raises(ValueError, match=f"limit {expected}"):
        clip_by_value(grads, bad)


def test_clipping_wants_a_dict_of_gradients():
    with pytest.raises(ValueError, match="grads must be a dict of NumPy arrays, got list"):
        clip_by_norm([np.ones(3)], 1.0)
