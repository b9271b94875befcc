"""`recur quickstart`: the offline fallback always works; the IMDB run is a slow test."""

import os

import pytest

from recur.cli import main
from recur.training import load


def test_quickstart_without_imdb_runs_digits_offline(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("RECUR_DATA", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path))        # no ~/.cache copy either
    monkeypatch.chdir(tmp_path)                      # no ../shared/datasets either
    out = tmp_path / "run"
    assert main(["quickstart", "--data", str(empty), "--out", str(out), "--epochs", "4",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "IMDB was not found" in printed
    assert "handwritten digits" in printed
    accuracy = float(printed.split("validation accuracy ")[1].split()[0])
    assert accuracy > 0.5                            # 10 classes: chance is 0.1
    assert load(out).config.input_features == 8


@pytest.mark.slow
def test_quickstart_on_imdb_learns(tmp_path, capsys):
    if not os.environ.get("RECUR_DATA"):
        pytest.skip("RECUR_DATA is not set and ../shared/datasets is absent")
    out = tmp_path / "run"
    assert main(["quickstart", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    accuracy = float(printed.split("validation accuracy ")[1].split()[0])
    assert accuracy > 0.65
    assert "this movie is awful but i love it." in printed
    assert (out / "plots" / "loss.png").is_file()
