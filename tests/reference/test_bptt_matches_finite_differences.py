"""The NumPy BPTT against centred finite differences in float64: the oracle of last resort.

    ∂L/∂θ_k ≈ (L(θ + ε e_k) - L(θ - ε e_k)) / 2ε,   ε = 1e-6, error O(ε²) + rounding ~1e-10

Checked for every parameter, the inputs xs and the initial state(s), for every cell, both
GRU forms and each Elman activation, with and without the readout V, c.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(loss: Callable[[], float], array: np.ndarray, eps: float = 1e-6):
    """Centred differences of ``loss()`` with respect to every entry of ``array`` (in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = loss()
        array[index] = saved - eps
        minus = loss()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def test_bptt_matches_centred_finite_differences(problem):
    grads = problem.grads()
    for group in (problem.params, problem.inputs):
        for name, array in group.items():
            numeric = numerical_gradient(problem.loss, array)
            assert np.linalg.norm(numeric) > 1e-3, f"{name}: the check would be vacuous"
            assert relative_error(grads[name], numeric) < 1e-6, name


def test_backward_returns_a_gradient_for_every_param_and_input(problem):
    grads = problem.grads()
    assert set(grads) == set(problem.params) | set(problem.inputs)
    for name, value in {**problem.params, **problem.inputs}.items():
        assert grads[name].shape == value.shape, name


def test_backward_without_final_state_gradient_counts_only_the_outputs(problem):
    # d_h_last=None must mean "the loss does not read h_T", not "reuse the outputs' gradient"
    problem.weights["h_last"] = np.zeros_like(problem.weights["h_last"])
    problem.weights["c_last"] = np.zeros_like(problem.weights["c_last"])
    with_zeros = problem.grads()
    outputs, cache = problem.forward()
    without = problem.case.module.backward(problem.weights["outputs"], cache)
    for name in with_zeros:
        np.testing.assert_array_equal(without[name], with_zeros[name], err_msg=name)


def test_forward_copies_its_inputs_so_later_edits_do_not_reach_the_cache(problem):
    before = problem.grads()
    outputs, cache = problem.forward()
    for array in (*problem.params.values(), *problem.inputs.values()):
        array += 1.0  # a training loop updating its weights in place after the forward
    extra = {"d_c_last": problem.weights["c_last"]} if problem.case.has_cell_state else {}
    after = problem.case.module.backward(
        problem.weights["outputs"], cache, d_h_last=problem.weights["h_last"], **extra
    )
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_missing_initial_state_means_zeros(problem):
    only_xs = {"xs": problem.inputs["xs"]}
    zeros = {name: np.zeros_like(value) for name, value in problem.inputs.items() if name != "xs"}
    implicit, _ = problem.forward(inputs=only_xs)
    explicit, _ = problem.forward(inputs={**only_xs, **zeros})
    np.testing.assert_array_equal(implicit, explicit)
