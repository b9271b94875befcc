"""Smoke test of bench/lm_conditional.py on keyword reviews: a conditional LM whose label
decides the review's one sentiment word, judged by a keyword classifier.

Behaviour only: the label must carry information about held-out openings, the judge must
tell the real openings' labels apart, and the results file must hold every part."""

import json
import subprocess
import sys
from pathlib import Path

from serve_models import train_tiny_sentiment, write_reviews

from recur.cli import main

BENCH = Path(__file__).resolve().parents[1] / "bench" / "lm_conditional.py"


def test_conditional_bench_measures_the_label_and_judges_samples(tmp_path):
    judge = train_tiny_sentiment(tmp_path / "judge")
    data = write_reviews(tmp_path / "reviews.jsonl", 600, 2)
    lm = tmp_path / "lm"
    assert main(["train", "lm", "--train", str(data), "--labelled", "--level", "word",
                 "--max-length", "14", "--preset", "tiny", "--epochs", "4", "--lr", "0.02",
                 "--out", str(lm), "--quiet"]) == 0
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(BENCH), str(lm), "--judge", str(judge),
                          "--data", str(data), "--samples", "12", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    info = result["label_information"]
    assert info["openings"] == 60 and info["loss_true_label"] < info["loss_other_label"]
    assert info["share_true_label_fits_better"] > 0.7
    real = result["judge_on_real_openings"]
    assert real["positive"]["share_positive"] > 0.8 > 0.2 > real["negative"]["share_positive"]
    for name in ("negative", "positive"):
        assert result["judge_on_generated_openings"][name]["n"] == 12
        assert len(result["examples"][name]) == 3
    assert "judged positive" in run.stdout
