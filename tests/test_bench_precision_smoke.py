"""Smoke test of bench/precision.py on tiny shapes.

Behaviour only (rows, their keys, the path each contender takes) — never timing. bench/ is
a folder of scripts, not a package, so it goes on sys.path here as when a script runs.
"""

import importlib
import sys
from pathlib import Path

import pytest
import torch

from recur import kernels

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def precision():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("precision")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.skipif(not kernels.lstm_available(), reason="no C++ toolchain for the LSTM kernel")
def test_rows_name_the_path_each_contender_takes(precision):
    rows = precision.run({"c": precision.QUICK_CONFIGS["c"]}, repeats=1, log=lambda m: None)
    assert [row["contender"] for row in rows] == list(precision.CONTENDERS)
    for row in rows:
        assert set(row) == set(precision.ROW_KEYS) and row["step_ms"] > 0
    paths = [row["path"] for row in rows]
    assert paths[0].startswith("oneDNN") and "float32" in paths[0]
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert paths[1].startswith("oneDNN") and "bfloat16" in paths[1]
    else:  # no AVX-512 BF16 / AMX (e.g. an AVX2 host): torch leaves oneDNN under bf16
        assert paths[1].startswith("other (") and "MkldnnRnnLayerBackward0" not in paths[1]
    assert paths[2].startswith("recur lstm_cpu.cpp")
    assert "| c |" in precision.table(rows)
