"""The long-dependency lab: its generated data, its tasks, and `recur lab` end to end."""

import json

import pytest
import torch

from recur.cli import main
from recur.tasks import lab
from recur.tasks.lab import (
    AddingTask,
    LabConfig,
    ProblemConfig,
    adding_problem,
    copy_problem,
    run_lab,
)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_adding_target_is_the_sum_of_the_two_marked_values():
    data = adding_problem(200, 11, generator(0))
    assert data.x.shape == (200, 11, 2) and data.y.shape == (200,)
    values, markers = data.x[..., 0], data.x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all() and set(markers.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(data.y, (values * markers).sum(1))
    marked = markers.nonzero()[:, 1].view(200, 2)                 # steps of the two markers
    assert torch.equal(marked, data.positions)


def test_adding_markers_fall_one_in_each_half():
    positions = adding_problem(2000, 10, generator(1)).positions
    assert (positions[:, 0] < 5).all() and (positions[:, 1] >= 5).all()
    assert set(positions[:, 0].tolist()) == set(range(5))          # every position is used
    assert set(positions[:, 1].tolist()) == set(range(5, 10))


def test_adding_baseline_of_always_predicting_one_is_0_167():
    y = adding_problem(20000, 20, generator(2)).y
    assert abs(float(((y - 1) ** 2).mean()) - 2 / 12) < 0.005


def test_generators_are_reproducible_from_their_seed():
    a, b = adding_problem(8, 6, generator(3)), adding_problem(8, 6, generator(3))
    c = adding_problem(8, 6, generator(4))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    assert torch.equal(copy_problem(4, 5, generator(3)).tokens, copy_problem(4, 5, generator(3)).tokens)


def test_task_batches_repeat_per_epoch_and_valid_test_are_disjoint():
    task = AddingTask(ProblemConfig("adding", "gru", 6, batch_size=4, eval_every=3,
                                    valid_size=5, test_size=5, seed=2))
    first, again = list(task.train_batches(1)), list(task.train_batches(1))
    assert len(first) == 3 and all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(task.train_batches(0).__next__()[0], first[0][0])
    assert not torch.equal(task.valid[0], task.test[0])


def test_copy_layout_symbols_delay_delimiter_blanks():
    K, A, delay = 3, 4, 5
    data = copy_problem(50, delay, generator(0), symbols=K, alphabet=A)
    assert data.tokens.shape == (50, delay + 2 * K) and data.x.shape == (50, delay + 2 * K, A + 2)
    assert ((data.tokens[:, :K] >= 1) & (data.tokens[:, :K] <= A)).all()
    assert torch.equal(data.y, data.tokens[:, :K] - 1)              # classes 0..A-1
    assert (data.tokens[:, K + delay - 1] == A + 1).all()            # the delimiter
    rest = torch.cat([data.tokens[:, K : K + delay - 1], data.tokens[:, K + delay:]], dim=1)
    assert (rest == 0).all()                                         # blanks
    assert torch.equal(data.x.argmax(-1), data.tokens)


def test_recur_lab_adding_end_to_end_writes_table_json_png(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["lab", "adding", "--cells", "elman,lstm", "--lengths", "5", "--seeds", "1",
                 "--steps", "20", "--eval-every", "10", "--hidden-size", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| cell | T=5 |" in printed and "| lstm | " in printed
    assert "budget 10 min" in printed and "thread" in printed     # budget and machine stated
    results = json.loads((out / "results.json").read_text())
    assert [(r["cell"], r["length"], r["steps"]) for r in results["runs"]] == [
        ("elman", 5, 20), ("lstm", 5, 20)]
    assert all(r["status"] in ("solved", "failed") and r["metric"] >= 0 for r in results["runs"])
    assert (out / "success.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "table.md").read_text().startswith("Success rate")
    assert (out / "gradient_flow.png").read_bytes()[:4] == b"\x89PNG"


def test_recur_lab_copy_reports_accuracy(tmp_path, capsys):
    out = tmp_path / "copy"
    assert main(["lab", "copy", "--cells", "gru", "--lengths", "3", "--seeds", "1", "--steps", "10",
                 "--eval-every", "10", "--hidden-size", "8", "--out", str(out)]) == 0
    run = json.loads((out / "results.json").read_text())["runs"][0]
    assert 0 <= run["metric"] <= 1 and "median test accuracy" in capsys.readouterr().out


def test_a_run_stops_once_validation_beats_the_bar(tmp_path, monkeypatch):
    monkeypatch.setattr(AddingTask, "threshold", 10.0)             # anything counts as solved
    config = LabConfig(cells=("gru",), lengths=(4,), seeds=1, steps=50, eval_every=5, hidden_size=4)
    run = lab.run_one(config, "gru", 4, 0, seconds=60, out_dir=tmp_path / "run")
    assert (run.status, run.stop_reason, run.steps) == ("solved", "solved", 5)


def test_spent_budget_lists_the_runs_that_did_not_run(tmp_path):
    config = LabConfig(cells=("elman", "gru"), lengths=(4, 8), seeds=1, budget_min=0.01)
    lines = []
    result = run_lab(config, tmp_path / "lab", say=lines.append)
    assert all(r.status == "not run" for r in result.runs)
    table = "\n".join(lines)
    assert "Not run (budget spent): elman T=4 seed 0, gru T=4 seed 0, elman T=8 seed 0" in table
    assert "| elman | not run | not run |" in table
    assert json.loads((tmp_path / "lab" / "results.json").read_text())["not_run"][0] == "elman T=4 seed 0"


def test_existing_out_folder_needs_overwrite(tmp_path):
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "notes.txt").write_text("mine")
    config = LabConfig(cells=("gru",), lengths=(4,), seeds=1, budget_min=0.01)
    with pytest.raises(ValueError, match="exists and is not empty; pass --overwrite"):
        run_lab(config, tmp_path / "lab", say=lambda line: None)
    with pytest.raises(ValueError, match="does not look like a lab folder"):
        run_lab(config, tmp_path / "lab", overwrite=True, say=lambda line: None)


@pytest.mark.parametrize("argv, named", [
    (["--cells", "elman,foo"], "argument --cells: must be comma-separated cell names"),
    (["--lengths", "10,0"], "argument --lengths: must be comma-separated positive ints"),
    (["--lengths", "ten"], "argument --lengths"),
    (["--seeds", "0"], "argument --seeds: must be a positive int"),
    (["--budget", "-1"], "argument --budget"),
])
def test_bad_cli_arguments_are_named(argv, named, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lab", "adding", *argv])
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize("fields, named", [
    ({"cells": ("elman", "foo")}, "cells must be names from"),
    ({"lengths": (10, 0)}, "lengths must be ints >= 2"),
    ({"lengths": (1,)}, "lengths must be ints >= 2 for the adding problem"),
    ({"optimizer": "adm"}, "optimizer must be one of"),
    ({"budget_min": 0}, "budget_min must be a positive number"),
])
def test_bad_lab_config_is_named(fields, named):
    with pytest.raises(ValueError, match=named):
        LabConfig(**fields)


def test_lab_models_load_back_from_their_checkpoint(tmp_path):
    config = LabConfig(problem="copy", cells=("lstm",), lengths=(2,), seeds=1, steps=2,
                       eval_every=2, hidden_size=4)
    lab.run_one(config, "lstm", 2, 0, seconds=60, out_dir=tmp_path / "run")
    model = lab.load(tmp_path / "run")
    x = copy_problem(3, 2, generator(0)).x
    assert model(x).shape == (3, 10, 8)                             # (B, K, A)
