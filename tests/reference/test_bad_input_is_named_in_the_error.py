"""Wrong shapes and names fail at the boundary with a ValueError that names the argument,
what was expected and what arrived, never deep inside a matmul."""

from __future__ import annotations

import re

import numpy as np
import pytest

from recur.reference import elman, gated, gru, lstm

B, T, D, H = 2, 4, 3, 5
rng = np.random.default_rng(0)
XS = rng.normal(size=(B, T, D))


def params_for(module, **changes):
    params = module.init_params(D, H, rng=np.random.default_rng(0))
    params.update(changes)
    return {name: value for name, value in params.items() if value is not None}


# (id, call, substrings the message must hold: the argument, the expectation, what arrived)
BAD_FORWARD = [
    ("xs-2d", lambda: gru.forward(params_for(gru), XS[0]), ["xs", "(B, T, D)", "D=3", "(4, 3)"]),
    (
        "xs-wrong-features",
        lambda: lstm.forward(params_for(lstm), np.zeros((B, T, 7))),
        ["xs", "(B, T, D)", "D=3", "(2, 4, 7)"],
    ),
    (
        "xs-no-steps",
        lambda: elman.forward(params_for(elman), np.zeros((B, 0, D))),
        ["xs", "T >= 1", "(2, 0, 3)"],
    ),
    (
        "h0-unbatched",
        lambda: gated.forward(params_for(gated), XS, np.zeros(H)),
        ["h0", "(B, H) = (2, 5)", "got (5,)"],
    ),
    (
        "h0-wrong-batch",
        lambda: gru.forward(params_for(gru), XS, np.zeros((3, H))),
        ["h0", "(B, H) = (2, 5)", "got (3, 5)"],
    ),
    (
        "c0-wrong-hidden",
        lambda: lstm.forward(params_for(lstm), XS, None, np.zeros((B, 4))),
        ["c0", "(B, H) = (2, 5)", "got (2, 4)"],
    ),
    (
        "params-not-a-dict",
        lambda: elman.forward([np.zeros((H, D))], XS),
        ["params", "dict", "weight_ih", "got list"],
    ),
    (
        "params-missing-key",
        lambda: gru.forward(params_for(gru, bias_hh=None), XS),
        ["params for gru", "weight_ih, weight_hh, bias_ih, bias_hh", "got keys", "'bias_ih'"],
    ),
    (
        "params-misspelt-key",
        lambda: lstm.forward(
            {("weights_ih" if k == "weight_ih" else k): v for k, v in params_for(lstm).items()}, XS
        ),
        ["params for lstm", "weight_ih", "'weights_ih'"],
    ),
    (
        "weight_hh-of-another-cell",  # a GRU's (3H, H) weights handed to the LSTM
        lambda: lstm.forward(params_for(gru), XS),
        ["params['weight_hh']", "(G*H, H) = (20, 5)", "G=4", "got (15, 5)"],
    ),
    (
        "weight_ih-wrong-rows",
        lambda: gru.forward(params_for(gru, weight_ih=np.zeros((2 * H, D))), XS),
        ["params['weight_ih']", "(G*H, D) = (15, D)", "G=3", "got (10, 3)"],
    ),
    (
        "bias-wrong-size",
        lambda: gated.forward(params_for(gated, bias_ih=np.zeros(H)), XS),
        ["params['bias_ih']", "(G*H,) = (10,)", "got (5,)"],
    ),
    (
        "readout-V-without-c",
        lambda: elman.forward(params_for(elman, V=np.zeros((2, H))), XS),
        ["V (O, H)", "c (O,)", "both"],
    ),
    (
        "readout-V-wrong-hidden",
        lambda: elman.forward(params_for(elman, V=np.zeros((2, 4)), c=np.zeros(2)), XS),
        ["params['V']", "(O, H)", "H=5", "V (2, 4)"],
    ),
    (
        "unknown-activation",
        lambda: elman.forward(params_for(elman), XS, activation="softplus"),
        ["activation", "'relu', 'sigmoid', 'tanh'", "'softplus'"],
    ),
    (
        "unknown-reset",
        lambda: gru.forward(params_for(gru), XS, reset="middle"),
        ["reset", "'after', 'before'", "'middle'"],
    ),
]


@pytest.mark.parametrize(
    "call, expected", [pytest.param(call, parts, id=name) for name, call, parts in BAD_FORWARD]
)
def test_bad_forward_input_names_argument_expectation_and_value(call, expected):
    with pytest.raises(ValueError) as error:
        call()
    for part in expected:
        assert part in str(error.value), f"{part!r} not in {str(error.value)!r}"


def test_bad_d_outputs_names_the_shape_of_the_outputs():
    outputs, cache = gru.forward(params_for(gru), XS)
    with pytest.raises(ValueError) as error:
        gru.backward(outputs[:, :, 0], cache)
    for part in ["d_outputs", "outputs' shape", "(2, 4, 5)", "got (2, 4)"]:
        assert part in str(error.value)


def test_bad_final_state_gradient_is_named():
    outputs, cache = lstm.forward(params_for(lstm), XS)
    expected = re.escape("must have shape (B, H) = (2, 5), got")
    with pytest.raises(ValueError, match=rf"d_c_last {expected} \(5,\)"):
        lstm.backward(np.zeros_like(outputs), cache, d_c_last=np.zeros(H))
    with pytest.raises(ValueError, match=rf"d_h_last {expected} \(2,\)"):
        lstm.backward(np.zeros_like(outputs), cache, d_h_last=np.zeros(2))


def test_backward_refuses_the_cache_of_another_cell():
    outputs, cache = gru.forward(params_for(gru), XS)
    with pytest.raises(ValueError, match="cache must come from lstm.forward, got gru"):
        lstm.backward(outputs, cache)
