"""Smoke test of bench/tagger.py on tiny sizes: it runs, prints its table, writes its JSON."""

import importlib
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_tagger_bench_quick(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECUR_DATA", str(tmp_path))  # no CoNLL here: generated sentences
    sys.path.insert(0, str(BENCH))
    try:
        tagger_bench = importlib.import_module("tagger")
        assert tagger_bench.main(["--quick", "--out", str(tmp_path / "t.json")]) == 0
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop("tagger", None)
    printed = capsys.readouterr().out
    assert "| Viterbi alone, batches of 64 |" in printed
    results = json.loads((tmp_path / "t.json").read_text())["results"]
    assert set(results) >= {"training", "tagging, batches of 64", "tagging, one sentence at a time"}
    assert all(r["sentences_per_s"] > 0 for name, r in results.items() if "Adam" not in name)
    assert all(r["ms_per_step"] > 0 for name, r in results.items() if "Adam" in name)
