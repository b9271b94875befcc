"""Smoke test of bench/gradient_flow.py on a tiny config: every PNG and the JSON written.

bench/ is a folder of scripts, not a package, so it goes on sys.path here the way it is
when a script runs.
"""

import importlib
import json
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("gradient_flow")
    finally:
        sys.path.remove(str(BENCH))


def test_writes_every_comparison(bench, tmp_path, capsys):
    out = tmp_path / "images"
    assert bench.main(["--length", "12", "--hidden-size", "6", "--steps", "4", "--out", str(out),
                       "--json", str(tmp_path / "r.json")]) == 0
    for name in ("inits", "activations", "cells", "clipping", "clipping-training"):
        with Image.open(out / f"gradient-flow-{name}.png") as image:
            assert image.format == "PNG"
    results = json.loads((tmp_path / "r.json").read_text())
    assert set(results["inits"]) == set(bench.INITS)
    assert set(results["cells"]) == {"elman", "gru", "lstm", "mingru"}
    assert all(len(r["grad_norms"]) == 12 for r in results["activations"].values())
    runs = results["clipping"]["runs"]
    assert [len(r["loss"]) for r in runs.values()] == [4, 4]
    assert "| inits | t=1 |" in capsys.readouterr().out


def test_identity_init_keeps_the_gradient_and_clipping_bounds_the_step(bench):
    """The facts the docs read off the plots, on a small model: with W = I and tiny inputs
    the tanh RNN passes the gradient back unchanged; a clipped SGD step never moves the
    weights by more than lr × clip."""
    import torch

    from recur.tasks.lab import adding_problem

    data = adding_problem(8, 30, torch.Generator().manual_seed(0))
    flows = bench.flows_of({"identity": bench.build("elman", {"init": "identity"}, 8)},
                           data.x * 1e-4, data.y)
    g = flows["identity"].grad_norms
    assert float(g[:-1].max() / g[:-1].min()) < 1.01                      # no decay over 29 steps
    model = bench.build(*bench.CLIPPED, 8)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    history = bench.train(model, steps=1, lr=0.5, clip=1.0, length=30, batch_size=8)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert math.isfinite(history["grad_norm"][0])
    assert float(torch.linalg.vector_norm(after - before)) <= 0.5 * 1.0 + 1e-6
