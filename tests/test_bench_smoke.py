"""Smoke test of bench/: the timing helpers and the layer benchmark on a tiny config.

Behaviour only (turn-taking, keys, files written) — never timing, which depends on the
machine. bench/ is a folder of scripts, not a package, so it goes on sys.path here the way
it is when a script runs.
"""

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("common"), importlib.import_module("layers")
    finally:
        sys.path.remove(str(BENCH))


def test_interleaved_takes_turns_and_caps_slow_contenders(bench):
    common, _ = bench
    calls = []
    contenders = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    timings = common.interleaved(contenders, repeats=3, warmup=1, limits={"c": 2})
    assert calls[:3] == ["a", "b", "c"]                         # warm-up, once each
    # rounds: a b c | (b c a) reversed: a c b | c a b with c capped at 2 calls
    assert calls[3:] == ["a", "b", "c", "a", "c", "b", "a", "b"]
    assert [len(timings[name].samples) for name in "abc"] == [3, 3, 2]
    assert timings["a"].median >= 0 and timings["a"].median_ms == 1e3 * timings["a"].median


def test_interleaved_reruns_rounds_other_processes_disturbed(bench, monkeypatch):
    common, _ = bench
    verdicts = iter([False, True, True])                       # round 1 was contended
    monkeypatch.setattr(common.CpuWatch, "quiet", lambda self, wall, others: next(verdicts))
    calls = []
    contenders = {name: (lambda name=name: calls.append(name)) for name in "ab"}
    timings = common.interleaved(contenders, repeats=2, warmup=0)
    assert calls == ["a", "b", "a", "b", "a", "b"]             # dropped round run again
    assert timings["a"].contended == 1 and len(timings["a"].samples) == 2


def test_interleaved_keeps_contended_rounds_when_no_round_is_clean(bench, monkeypatch):
    common, _ = bench
    monkeypatch.setattr(common.CpuWatch, "quiet", lambda self, wall, others: False)
    timings = common.interleaved({"a": lambda: None}, repeats=2, warmup=0, max_rounds=3)
    assert timings["a"].contended == 3 and len(timings["a"].samples) == 3


def test_markdown_table_and_results_file(bench, tmp_path):
    common, _ = bench
    table = common.markdown_table(["x", "y"], [[1, "2"], [3, 4]])
    assert table.splitlines() == ["| x | y |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]
    path = common.write_results("smoke", {"rows": [1]}, tmp_path / "out" / "smoke.json")
    document = json.loads(path.read_text())
    assert document["benchmark"] == "smoke" and document["rows"] == [1]
    assert {"cpu", "torch", "torch_threads", "python"} <= set(document["machine"])
    assert common.sgemm_gflops(32, repeats=1) > 0


def test_tiny_layer_benchmark_rows_have_expected_keys(bench):
    _, layers = bench
    tiny = layers.Config(batch=2, steps=5, inputs=3, hidden=4, layers=2)
    results = layers.benchmark({"tiny": tiny}, ["lstm", "gru", "elman"], repeats=1, warmup=0,
                               max_wait=0,
                               minimal=tiny._replace(layers=1), sgemm_size=32,
                               log=lambda message: None)
    rows = results["rows"]
    assert [(r["cell"], r["mode"]) for r in rows] == [
        (cell, mode) for cell in ("lstm", "gru", "elman") for mode in ("train", "infer")]
    for row in rows:
        assert set(row) == set(layers.ROW_KEYS)
        assert row["shape"] == "B2 T5 D3 H4 L2"
        assert row["readable_ms"] is not None and row["percent_of_sgemm"] > 0
        assert set(row["samples_ms"]) == {"recur", "torch", "readable"}
    lstm_train = rows[0]
    # 2·B·T·G·H·(D_in + H) per layer, layer 2 reads H features, ×3 for training
    assert lstm_train["flops"] == 3 * 2 * 2 * 5 * 4 * 4 * ((3 + 4) + (4 + 4))
    assert [r["model"] for r in results["minimal"]][0] == "nn.GRU"
    for row in results["minimal"]:
        assert set(row) == set(layers.MINIMAL_ROW_KEYS)


def test_skip_readable_above_leaves_readable_out(bench):
    _, layers = bench
    tiny = layers.Config(batch=2, steps=3, inputs=3, hidden=4, layers=1)
    rows = layers.run_layers({"tiny": tiny}, ["elman"], repeats=1, warmup=0, modes=["infer"],
                             skip_readable_above=2, sgemm_size=32, max_wait=0,
                             log=lambda message: None)
    assert rows[0]["readable_ms"] is None and "readable" not in rows[0]["samples_ms"]


def test_quick_cli_prints_tables_and_writes_json(bench, tmp_path, monkeypatch, capsys):
    _, layers = bench
    tiny = layers.Config(batch=2, steps=4, inputs=3, hidden=4, layers=1)
    monkeypatch.setitem(layers.CONFIGS, "a", tiny)           # --quick runs config a
    monkeypatch.setattr(layers, "MINIMAL_CONFIG", tiny)
    out = tmp_path / "layers.json"
    threads = str(torch.get_num_threads())                   # main() sets it for the process
    layers.main(["--quick", "--cells", "gru,elman", "--repeats", "1", "--warmup", "0",
                 "--sgemm-size", "32", "--max-wait", "0", "--threads", threads,
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert "| cfg | shape | cell | recur fused (ms) | torch.nn (ms) | torch/recur |" in printed
    assert "minGRU / minLSTM vs nn.GRU" in printed
    document = json.loads(out.read_text())
    assert document["settings"]["configs"] == ["a"]
    assert len(document["rows"]) == 4 and len(document["minimal"]) == 4
    assert set(document["sgemm"]) >= {"peak_gflop_per_s", "start", "end"}


def test_cli_rejects_unknown_config(bench):
    _, layers = bench
    with pytest.raises(SystemExit):
        layers.main(["--configs", "a,z"])


def test_minimal_long_table_races_nn_lstm(bench):
    _, layers = bench
    tiny = layers.Config(batch=2, steps=6, inputs=3, hidden=4, layers=1)
    results = layers.benchmark({}, [], repeats=1, warmup=0, max_wait=0, minimal=None,
                               minimal_long=tiny, sgemm_size=32, log=lambda message: None)
    assert results["rows"] == [] and results["minimal"] == []
    rows = results["minimal_long"]
    assert [r["model"] for r in rows] == ["nn.LSTM", "recur mingru (compiled scan)",
                                          "recur minlstm (compiled scan)",
                                          "recur mingru (readable scan)",
                                          "recur minlstm (readable scan)",
                                          "recur mingru (parallel scan)"]
    for row in rows:
        assert set(row) == set(layers.MINIMAL_LONG_ROW_KEYS)
    assert rows[0]["speed_vs_nn_lstm"] == 1.0
    assert "| recur mingru (parallel scan)" in layers.markdown(
        {**results, "settings": {"threads": 1}}, "minimal-long")
