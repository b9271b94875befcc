"""Smoke test of bench/serve_load.py: a few predict and generate requests on loopback, the
JSON it writes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
BENCH = Path(__file__).resolve().parents[1] / "bench" / "serve_load.py"


@pytest.mark.slow
def test_serve_load_answers_every_request_and_writes_results(tmp_path):
    out = tmp_path / "serve_load.json"
    subprocess.run([sys.executable, str(BENCH), "--requests", "10", "--concurrency", "1", "4",
                    "--max-seconds", "20", "--gen-requests", "3", "--gen-tokens", "5",
                    "--out", str(out)], check=True, timeout=300, capture_output=True)
    result = json.loads(out.read_text())
    assert [(level["micro_batching"], level["concurrency"]) for level in result["levels"]] == \
        [("on", 1), ("on", 4), ("off", 1), ("off", 4)]
    for level in result["levels"]:
        assert level["answered"] == 10 and level["statuses"] == {"200": 10}
        assert 0 < level["p50_ms"] <= level["p99_ms"]
    unbatched = [level for level in result["levels"] if level["micro_batching"] == "off"]
    assert all(level["mean_batch"] == 1 for level in unbatched)
    assert {r["backend"] for r in result["direct"]} == {"torch", "onnxruntime"}
    assert [level["concurrency"] for level in result["generate_levels"]] == [1, 4]
    for level in result["generate_levels"]:
        assert level["answered"] == 3 and level["statuses"] == {"200": 3}
        assert level["tokens_received"] == 15  # every streamed token event was read
        assert 0 < level["first_token_p50_ms"] <= level["p50_ms"] <= level["p99_ms"]
