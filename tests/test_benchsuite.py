"""``recur bench``: the docs rewriting from fixture results, suite names, the checkout check,
and one quick suite end to end. Behaviour only, never timing."""

import json
import sys
from pathlib import Path

import pytest

from recur import benchsuite, cli
from recur.benchsuite import BenchError, rewrite_regions

ROOT = Path(__file__).resolve().parents[1]

LAYERS_DOC = {
    "benchmark": "layers",
    "settings": {"threads": 1},
    "sgemm": {"size": 64, "peak_gflop_per_s": 10.0, "samples_gflop_per_s": [9.0, 10.0]},
    "rows": [
        {"config": "a", "shape": "B2 T3 D4 H5 L1", "cell": "gru", "mode": mode,
         "recur_ms": 1.5, "torch_ms": 3.0, "torch_over_recur": 2.0, "readable_ms": None,
         "readable_over_recur": None, "tokens_per_s": 4000.0, "gflop_per_s": 1.0,
         "percent_of_sgemm": 10.0, "clean": True}
        for mode in ("train", "infer")],
    "minimal_config": "B2 T3 D4 H5 L1",
    "minimal": [{"model": "nn.GRU", "ms": 2.0, "tokens_per_s": 3000.0, "speed_vs_nn_gru": 1.0,
                 "clean": True}],
    "minimal_long_config": "B2 T4096 D4 H5 L1",
    "minimal_long": [{"model": "recur mingru (sequential scan)", "ms": 10.0,
                      "tokens_per_s": 819200.0, "speed_vs_nn_lstm": 5.25, "clean": False}],
}
MEMORY_DOC = {
    "benchmark": "memory",
    "settings": {"threads": 1, "repeats": 3, "memory_repeats": 2},
    "shape": [32, 200, 512, 512, 2],
    "rows": [{"case": "recur fused", "baseline_mb": 250.0, "step1_mb": 318.4, "step2_mb": 320.0},
             {"case": "recur fused, checkpoint_chunk=20", "baseline_mb": 251.0,
              "step1_mb": 128.0, "step2_mb": 131.0}],
    "timing": {"recur fused": {"ms": 2000.0, "clean": True, "vs_recur_fused": 1.0},
               "recur fused, checkpoint_chunk=20": {"ms": 2600.0, "clean": True,
                                                    "vs_recur_fused": 1.3}},
}

DOCS = """# Benchmarks

Prose before, kept as it is.

<!-- bench:layers:train:start -->
an old table
<!-- bench:layers:train:end -->

Prose between.
<!-- bench:layers-compiled:compact:start -->
<!-- bench:layers-compiled:compact:end -->

<!-- bench:layers:minimal-long:start -->
<!-- bench:layers:minimal-long:end -->
<!-- bench:memory:start -->
stale
<!-- bench:memory:end -->
Prose after, no newline at the end."""


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "layers.json").write_text(json.dumps(LAYERS_DOC))
    (folder / "layers-compiled.json").write_text(json.dumps(LAYERS_DOC))
    (folder / "memory.json").write_text(json.dumps(MEMORY_DOC))
    return folder


@pytest.fixture
def docs(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(DOCS)
    return path


def outside_regions(text: str) -> list[str]:
    """The lines of ``text`` outside its generated regions (markers included)."""
    kept, inside = [], False
    for line in text.splitlines():
        if line.endswith(":end -->"):
            inside = False
        if not inside:
            kept.append(line)
        if line.endswith(":start -->"):
            inside = True
    return kept


def run_cli(*argv: str) -> int:
    return cli.main(["bench", *argv])


def test_write_docs_fills_regions_from_results_and_keeps_prose(results, docs, capsys):
    assert run_cli("--no-run", "--write-docs", "--root", str(ROOT), "--results", str(results),
                   "--docs", str(docs)) == 0
    text = docs.read_text()
    assert "an old table" not in text and "stale" not in text
    assert outside_regions(text) == outside_regions(DOCS)
    assert "| a | B2 T3 D4 H5 L1 | gru | 1.50 | 3.00 | 2.000 | — | — | 4,000 | 1.0 | 10% |" in text
    assert "| a | B2 T3 D4 H5 L1 | gru | 1.50 | 3.00 | 2.00 | 2.00 |" in text  # compact view
    assert "| recur mingru (sequential scan) † | 10.0 | 819,200 | 5.25× |" in text
    assert "| recur fused, checkpoint_chunk=20 | 128 | 131 | 2600 | 1.30× |" in text
    assert text.endswith("Prose after, no newline at the end.")
    assert "rewrote 4 region(s)" in capsys.readouterr().out


def test_write_docs_is_idempotent(results, docs):
    argv = ["--no-run", "--write-docs", "--root", str(ROOT), "--results", str(results),
            "--docs", str(docs)]
    assert run_cli(*argv) == 0
    once = docs.read_text()
    assert run_cli(*argv) == 0
    assert docs.read_text() == once


def test_write_docs_for_named_suites_leaves_other_regions(results, docs):
    assert run_cli("memory", "--no-run", "--write-docs", "--root", str(ROOT),
                   "--results", str(results), "--docs", str(docs)) == 0
    text = docs.read_text()
    assert "an old table" in text and "stale" not in text


def test_unknown_suite_is_a_clear_error(capsys):
    assert run_cli("layers", "nope", "--no-run") == 2
    err = capsys.readouterr().err
    assert "recur bench: error: unknown suite 'nope': expected one of layers, memory," in err


def test_missing_results_and_bad_view_name_the_file_and_leave_docs_alone(results, docs, capsys):
    (results / "memory.json").unlink()
    argv = ["--no-run", "--write-docs", "--root", str(ROOT), "--results", str(results),
            "--docs", str(docs)]
    assert run_cli(*argv) == 2
    assert f"no results for 'memory': {results / 'memory.json'} does not exist" in \
        capsys.readouterr().err
    assert docs.read_text() == DOCS                                   # nothing half-written
    (results / "memory.json").write_text(json.dumps(MEMORY_DOC))
    docs.write_text(DOCS.replace("layers:train:", "layers:bogus:"))
    assert run_cli(*argv) == 2
    assert "layers has no view 'bogus'; expected one of train, infer" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("<!-- bench:memory:start -->\nx\n", "line 1: region 'memory' has no end marker"),
    ("<!-- bench:memory:end -->\n", "line 1: end marker 'memory' without its start"),
    ("<!-- bench:memory:start -->\n<!-- bench:layers:start -->\n",
     "line 2: marker '<!-- bench:layers:start -->' inside the region opened on line 1"),
])
def test_unpaired_markers_name_the_line(text, message):
    with pytest.raises(BenchError, match=message):
        rewrite_regions(text, lambda key, view: "table")


def test_results_file_without_a_suite_is_named():
    with pytest.raises(BenchError, match="results file other.json belongs to no suite"):
        benchsuite.suite_of("other", {})
    assert benchsuite.suite_of("layers-compiled", {}) == "layers"
    assert benchsuite.suite_of("forecast_v1", {"benchmark": "forecast"}) == "forecast"


def test_outside_a_checkout_the_error_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(benchsuite, "SOURCE_ROOT", tmp_path / "site-packages")
    assert run_cli("tagger", "--quick") == 2
    err = capsys.readouterr().err
    assert "recur bench needs a source checkout: the benchmark scripts live in bench/" in err
    assert run_cli("--root", str(tmp_path), "--no-run") == 2
    assert "--root must be a recur source checkout" in capsys.readouterr().err


def test_quick_and_write_docs_together_are_refused(capsys):
    assert run_cli("--quick", "--write-docs") == 2
    assert "--write-docs renders docs from full runs" in capsys.readouterr().err


def test_quick_tagger_suite_runs_its_script_and_prints_the_table(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("RECUR_DATA", str(tmp_path))   # no CoNLL here: generated sentences
    assert run_cli("tagger", "--quick", "--root", str(ROOT), "--results", str(tmp_path)) == 0
    printed = capfd.readouterr().out
    assert "## tagger:" in printed and "| Viterbi alone, batches of 64 |" in printed
    document = json.loads((tmp_path / "tagger.json").read_text())
    assert document["benchmark"] == "tagger"
    assert run_cli("tagger", "--no-run", "--root", str(ROOT), "--results", str(tmp_path)) == 0
    assert "| training |" in capfd.readouterr().out


def test_run_all_script_calls_the_same_code(tmp_path):
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--list"],
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.splitlines()[0].startswith("layers ")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "nope"],
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 2 and "unknown suite 'nope'" in done.stderr
