"""Smoke test of bench/trainer_overhead.py on a tiny config.

Behaviour only (rows and their keys, same weights from both loops, the path detection,
the JSON written) — never timing, which depends on the machine. bench/ is a folder of
scripts, not a package, so it goes on sys.path here the way it is when a script runs.
"""

import importlib
import json
import sys
from pathlib import Path

import pytest

from recur.models import ClassifierConfig

BENCH = Path(__file__).resolve().parents[1] / "bench"
TINY_MODEL = ClassifierConfig(vocab_size=11, embed_dim=4, hidden_size=3, head_sizes=(2,))


@pytest.fixture(scope="module")
def overhead():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("trainer_overhead")
    finally:
        sys.path.remove(str(BENCH))


def test_overhead_rows_have_expected_keys_and_both_loops_agree(overhead):
    result = overhead.run_overhead(steps_per_run=4, batch=2, length=3, vocab=11, log_every=2,
                                   repeats=2, warmup=0, model_config=TINY_MODEL,
                                   log=lambda message: None)
    rows = result["rows"]
    assert [row["contender"] for row in rows] == ["hand loop", "Trainer.fit"]
    for row in rows:
        assert set(row) == set(overhead.OVERHEAD_ROW_KEYS)
        assert row["steps_timed"] == 2 and len(row["samples_ms"]) >= 2 and row["step_ms"] > 0
    assert rows[0]["vs_hand_loop"] == 1.0 and rows[0]["epoch_end_ms"] is None
    assert rows[1]["epoch_end_ms"] >= 0
    assert result["max_weight_diff"] == 0.0  # same seed, batches, optimizer and clipping


def test_overhead_rejects_a_window_that_does_not_fit(overhead):
    with pytest.raises(ValueError, match="multiple of log_every"):
        overhead.run_overhead(steps_per_run=5, log_every=2, model_config=TINY_MODEL)


def test_precision_rows_name_the_path_taken(overhead):
    shape = overhead.Shape(batch=2, steps=3, inputs=4, hidden=4, layers=2)
    result = overhead.run_precision(shape, repeats=2, bf16_repeats=1, matmul_size=8,
                                    log=lambda message: None)
    rows = result["rows"]
    assert [row["precision"] for row in rows] == ["fp32", "bf16"]
    for row in rows:
        assert set(row) == set(overhead.PRECISION_ROW_KEYS)
        assert row["shape"] == "B2 T3 D4 H4 L2"
    # rounds disturbed by other processes are re-run, so there can be more samples
    assert len(rows[0]["samples_ms"]) >= 2 and len(rows[1]["samples_ms"]) >= 1
    assert rows[0]["path"].startswith("oneDNN fused LSTM")  # fp32 LSTM always takes oneDNN
    assert "bfloat16" in rows[1]["path"]
    assert [set(m) for m in result["matmul"]] == [set(overhead.MATMUL_ROW_KEYS)] * 2
    assert set(result["support"]) == {"cpu_capability", "onednn_bf16"}


def test_cli_prints_tables_and_writes_json(overhead, tmp_path, monkeypatch, capsys):
    tiny_seed = ClassifierConfig(vocab_size=1001, embed_dim=4, hidden_size=3, head_sizes=(2,))
    monkeypatch.setattr(ClassifierConfig, "seed", classmethod(lambda cls, vocab=1001: tiny_seed))
    out = tmp_path / "trainer_overhead.json"
    overhead.main(["--steps", "100", "--repeats", "1", "--warmup", "0", "--skip-precision",
                   "--out", str(out)])
    printed = capsys.readouterr().out
    assert "| contender | ms / step (median) |" in printed
    document = json.loads(out.read_text())
    assert document["benchmark"] == "trainer_overhead" and document["precision"] is None
    assert [r["contender"] for r in document["overhead"]["rows"]] == ["hand loop", "Trainer.fit"]
