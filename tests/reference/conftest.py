"""Shared cases for the NumPy reference tests: every cell, both GRU forms, each Elman activation.

A ``Problem`` is one small random instance (B=2, T=4, D=3, H=5) with the scalar loss

    L = Σ outputs ⊙ R + Σ h_T ⊙ R_h (+ Σ c_T ⊙ R_c for the LSTM)

so the gradient reaches every step's output and, through d_h_last / d_c_last, the final
state as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import pytest

from recur.reference import elman, gated, gru, lstm

B, T, D, H, OUT = 2, 4, 3, 5, 2  # OUT: the readout size O


@dataclass(frozen=True)
class Case:
    name: str
    module: ModuleType
    options: dict[str, str] = field(default_factory=dict)  # activation= or reset=
    readout: bool = False

    @property
    def has_cell_state(self) -> bool:
        return self.module is lstm


RECURRENT_CASES = [
    Case("elman-tanh", elman, {"activation": "tanh"}),
    Case("elman-relu", elman, {"activation": "relu"}),
    Case("elman-sigmoid", elman, {"activation": "sigmoid"}),
    Case("gated", gated),
    Case("gru-after", gru, {"reset": "after"}),
    Case("gru-before", gru, {"reset": "before"}),
    Case("lstm", lstm),
]
READOUT_CASES = [
    Case(f"elman-{f}-readout", elman, {"activation": f}, readout=True)
    for f in ("tanh", "relu", "sigmoid")
]
ALL_CASES = RECURRENT_CASES + READOUT_CASES


@dataclass
class Problem:
    case: Case
    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]  # xs (B, T, D), h0 (B, H), and c0 (B, H) for the LSTM
    weights: dict[str, np.ndarray]  # R for outputs, R_h for h_T, R_c for c_T

    def forward(self, params=None, inputs=None):
        params = self.params if params is None else params
        inputs = self.inputs if inputs is None else inputs
        return self.case.module.forward(params, **inputs, **self.case.options)

    def loss(self, params=None, inputs=None) -> float:
        outputs, cache = self.forward(params, inputs)
        total = np.sum(outputs * self.weights["outputs"])
        total += np.sum(cache.h_last * self.weights["h_last"])
        if self.case.has_cell_state:
            total += np.sum(cache.c_last * self.weights["c_last"])
        return float(total)

    def grads(self) -> dict[str, np.ndarray]:
        outputs, cache = self.forward()
        extra = {"d_c_last": self.weights["c_last"]} if self.case.has_cell_state else {}
        return self.case.module.backward(
            self.weights["outputs"], cache, d_h_last=self.weights["h_last"], **extra
        )


def _make_problem(case: Case, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    if case.module is elman:
        params = elman.init_params(D, H, output_size=OUT if case.readout else None, rng=rng)
    else:
        params = case.module.init_params(D, H, rng=rng)
    inputs = {"xs": rng.normal(size=(B, T, D)), "h0": rng.normal(scale=0.5, size=(B, H))}
    if case.has_cell_state:
        inputs["c0"] = rng.normal(scale=0.5, size=(B, H))
    weights = {
        "outputs": rng.normal(size=(B, T, OUT if case.readout else H)),
        "h_last": rng.normal(size=(B, H)),
        "c_last": rng.normal(size=(B, H)),
    }
    return Problem(case, params, inputs, weights)


@pytest.fixture(params=ALL_CASES, ids=lambda case: case.name)
def case(request) -> Case:
    """Every cell, both GRU forms, each Elman activation with and without the readout."""
    return request.param


@pytest.fixture
def problem(case: Case) -> Problem:
    return _make_problem(case)


@pytest.fixture
def make_problem():
    """A factory: ``make_problem("gru-before")`` builds the Problem of that named case."""
    by_name = {case.name: case for case in ALL_CASES}
    return lambda name, seed=0: _make_problem(by_name[name], seed)
