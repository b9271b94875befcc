"""Smoke test of bench/lm.py: generation rows for torch and onnxruntime on a tiny shape.

Behaviour only (the rows and keys written), never timing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "lm.py"


@pytest.mark.slow
def test_lm_bench_times_torch_and_onnxruntime_generation(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "lm.json"
    subprocess.run([sys.executable, str(BENCH), "--quick", "--generate-only", "--repeats", "1",
                    "--gen-tokens", "5", "--out", str(out)], check=True, timeout=300,
                   capture_output=True)
    record = json.loads(out.read_text())["results"][0]
    for name in ("fp32", "bf16", "onnxruntime"):
        assert record[f"generate_tokens_per_s_{name}"] > 0
        assert record[f"generate_tokens_per_cpu_s_{name}"] > 0
    assert "train_tokens_per_s_fp32" not in record
