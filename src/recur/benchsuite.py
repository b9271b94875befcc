"""The benchmark suite behind ``recur bench`` and ``bench/run_all.py``.

    recur bench                          every suite at full size (hours; see below)
    recur bench layers memory            two suites
    recur bench tagger --quick           a smoke run (results go to bench/results/quick/)
    recur bench --no-run                 print the tables of the results already in bench/results/
    recur bench --no-run --write-docs    rewrite docs/benchmarks.md's generated regions from them
    recur bench --list                   the suites and the commands they run

A *suite* is one script in the checkout's ``bench/`` folder (``SUITES``). Each runs in its
own Python process (so thread pools of different libraries never compete in one process),
prints its tables and writes ``bench/results/NAME.json``. The scripts are not part of the
installed package: ``recur bench`` needs a source checkout and says so where there is none.
On a shared machine run it through the slot runner, one suite at a time, e.g.
``/work/shared/bin/longrun .venv/bin/recur bench layers``.

**Generated regions.** ``--write-docs`` replaces what lies between a pair of markers in
docs/benchmarks.md and leaves every other line as it is::

    <!-- bench:layers:train:start -->
    (the table, rendered from bench/results/layers.json)
    <!-- bench:layers:train:end -->

The marker names a results file (``bench:KEY`` reads ``bench/results/KEY.json``) and
optionally a view (``:train``), which the suite's script renders with its ``markdown(document,
view)`` function. ``KEY`` is a suite name or a file the suite wrote with ``--out``
(``layers-compiled``): the suite is the document's ``benchmark`` field, else the longest
suite name ``KEY`` starts with. Rendering the same results twice gives the same file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple


class Suite(NamedTuple):
    """One script in bench/: how to run it fully and quickly, and what it needs."""

    script: str                          # file name in bench/
    what: str                            # one line for --list
    args: tuple[str, ...] = ()           # the full run, as measured in docs/benchmarks.md
    quick: tuple[str, ...] = ()          # the smoke run
    requires: tuple[str, ...] = ()       # paths (relative to the checkout) that must exist


SUITES: dict[str, Suite] = {
    "layers": Suite("layers.py", "recur.Recurrent vs torch.nn LSTM/GRU/RNN, train and infer; "
                    "minGRU/minLSTM", ("--repeats", "7", "--readable-repeats", "5"),
                    ("--quick", "--max-wait", "0")),
    "memory": Suite("memory.py", "training-step memory peak of config c, with and without "
                    "gradient checkpointing over time", (), ("--quick", "--memory-repeats", "1")),
    "trainer_overhead": Suite("trainer_overhead.py", "Trainer.fit vs a hand loop; bf16 vs fp32",
                              (), ("--quick",)),
    "imdb": Suite("imdb.py", "the seed IMDB model: recur vs Keras 3, s/epoch and accuracy",
                  ("--epochs", "3"), ("--limit", "640", "--epochs", "2", "--no-keras")),
    "lm": Suite("lm.py", "language models: training and generation tokens/s, fp32 vs bf16",
                (), ("--quick",)),
    "serve_load": Suite("serve_load.py", "recur serve under load: req/s, p50/p99; ONNX backend",
                        (), ("--requests", "20", "--concurrency", "1", "4",
                             "--max-seconds", "10")),
    "tagger": Suite("tagger.py", "NER tagger: training and tagging sentences/s, Viterbi, Adam",
                    ("--sentences", "320"), ("--quick",)),
    "translate": Suite("translate.py", "seq2seq translation: training tokens/s, greedy and "
                       "beam decoding", ("runs/translate-multi30k", "--sentences", "200",
                                         "--train-steps", "10"),
                       ("runs/translate-multi30k", "--sentences", "8", "--train-steps", "2"),
                       ("runs/translate-multi30k",)),
    "forecast": Suite("forecast.py", "forecasting panel: recur vs naive, ETS, ARIMA (MASE)",
                      ("--reuse-baselines", "bench/results/forecast_v1.json"),
                      ("--series", "airline", "--no-baselines", "--steps", "20", "--folds", "1",
                       "--ensemble", "1")),
    "forecast_global": Suite("forecast.py", "forecasting panel with one global recur model "
                             "(backtest-chosen partner per series) vs the same baselines",
                             ("--global", "--reuse-baselines", "bench/results/forecast.json",
                              "--reuse-methods", "naive,seasonal_naive,ets,arima"),
                             ("--global", "--series", "airline,lynx", "--no-baselines",
                              "--steps", "10", "--folds", "1", "--ensemble", "1",
                              "--backtest-ensemble", "1", "--anchors", "seasonal_diff",
                              "--series-id", "yes")),
}

# Where an editable install's source tree is (src/recur/benchsuite.py -> the checkout); in a
# wheel install this is site-packages' parent, which holds no bench/.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- bench:(?P<name>[A-Za-z0-9_.:-]+?):(?P<edge>start|end) -->\s*$")


class BenchError(ValueError):
    """A user-facing problem with the suite, the checkout or the docs markers."""


# -- where the scripts are -------------------------------------------------------------------


def is_checkout(path: Path) -> bool:
    return (path / "bench" / "common.py").is_file()


def find_checkout(root: str | Path | None = None) -> Path:
    """The source checkout holding bench/: ``root`` if given, else the current folder or one
    above it, else the tree this package was installed from (an editable install)."""
    if root is not None:
        path = Path(root).resolve()
        if not is_checkout(path):
            raise BenchError(f"--root must be a recur source checkout (with bench/common.py), "
                             f"got {path}")
        return path
    cwd = Path.cwd().resolve()
    source = SOURCE_ROOT
    for path in (cwd, *cwd.parents, source):
        if is_checkout(path):
            return path
    raise BenchError(
        "recur bench needs a source checkout: the benchmark scripts live in bench/ of the "
        f"repository, not in the installed package (looked in {cwd}, its parents and "
        f"{source}). Run it from a clone of recur, or pass --root DIR.")


def check_suites(names: Sequence[str]) -> list[str]:
    """``names`` in SUITES order (all suites if empty); unknown names raise a BenchError."""
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        raise BenchError(f"unknown suite {', '.join(map(repr, unknown))}: expected one of "
                         f"{', '.join(SUITES)}")
    return [name for name in SUITES if not names or name in names]


# -- running ---------------------------------------------------------------------------------


def command(name: str, root: Path, results: Path, quick: bool) -> list[str]:
    """The command line that runs suite ``name`` and writes ``results / NAME.json``."""
    suite = SUITES[name]
    return [sys.executable, str(root / "bench" / suite.script),
            *(suite.quick if quick else suite.args), "--out", str(results / f"{name}.json")]


def run_suites(names: Sequence[str], root: Path, results: Path, quick: bool,
               say: Callable[[str], None] = print) -> list[str]:
    """Run each suite in its own process (output streams through); return those that failed."""
    for name in names:
        missing = [path for path in SUITES[name].requires if not (root / path).exists()]
        if missing:
            raise BenchError(f"suite {name} needs {', '.join(missing)} in {root} (a trained "
                             f"model: see docs/benchmarks.md); it is not there")
    results.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        argv = command(name, root, results, quick)
        say(f"\n## {name}: {' '.join(argv[1:])}\n")
        done = subprocess.run(argv, cwd=root, check=False)
        if done.returncode != 0:
            say(f"suite {name} failed (exit code {done.returncode})")
            failed.append(name)
    return failed


# -- rendering -------------------------------------------------------------------------------


def suite_of(key: str, document: dict) -> str:
    """The suite that wrote results file ``key``: by name, by the document, by prefix."""
    if key in SUITES:
        return key
    if document.get("benchmark") in SUITES:
        return document["benchmark"]
    prefixes = [name for name in SUITES if key.startswith(name)]
    if not prefixes:
        raise BenchError(f"results file {key}.json belongs to no suite: name it after one of "
                         f"{', '.join(SUITES)}")
    return max(prefixes, key=len)


def load_script(root: Path, name: str):
    """Import bench/SCRIPT.py of suite ``name`` (bench/ goes on sys.path, as when it runs)."""
    bench = str(root / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module(Path(SUITES[name].script).stem)


def renderer(root: Path, results: Path) -> Callable[[str, str | None], tuple[str, str]]:
    """``render(key, view) -> (suite, markdown)`` from ``results / KEY.json``."""
    def render(key: str, view: str | None) -> tuple[str, str]:
        path = results / f"{key}.json"
        if not path.is_file():
            raise BenchError(f"no results for {key!r}: {path} does not exist (run `recur "
                             f"bench` for its suite first)")
        document = json.loads(path.read_text())
        name = suite_of(key, document)
        script = load_script(root, name)
        if not hasattr(script, "markdown"):
            raise BenchError(f"bench/{SUITES[name].script} has no markdown(document, view) "
                             f"function, so {key!r} cannot be rendered")
        try:
            return name, script.markdown(document, view).strip()
        except ValueError as error:
            raise BenchError(f"{key}: {error}") from None
    return render


def rewrite_regions(text: str, render: Callable[[str, str | None], str],
                    keep: Callable[[str, str | None], bool] = lambda key, view: True) -> str:
    """``text`` with every ``<!-- bench:KEY[:VIEW]:start -->`` … ``end`` region re-rendered.

    Lines outside the markers are returned unchanged; a region ``keep`` rejects is left as
    it is. Unpaired or nested markers raise a BenchError naming the line.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    open_at: tuple[int, str] | None = None
    for number, line in enumerate(lines, 1):
        match = MARKER.match(line.strip())
        if open_at is not None and not (match and match["edge"] == "end"):
            if match is not None:
                raise BenchError(f"line {number}: marker {line.strip()!r} inside the region "
                                 f"opened on line {open_at[0]}")
            if not keep(*split_name(open_at[1])):
                out.append(line)
            continue
        if match is None:
            out.append(line)
            continue
        name, edge = match["name"], match["edge"]
        if edge == "start":
            open_at = (number, name)
            out.append(line)
            continue
        if open_at is None or open_at[1] != name:
            expected = f"the end of {open_at[1]!r}" if open_at else "a start marker first"
            raise BenchError(f"line {number}: end marker {name!r} without its start "
                             f"(expected {expected})")
        key, view = split_name(name)
        if keep(key, view):
            out.append(render(key, view).strip() + "\n")
        out.append(line if line.endswith("\n") else line + "\n")
        open_at = None
    if open_at is not None:
        raise BenchError(f"line {open_at[0]}: region {open_at[1]!r} has no end marker "
                         f"<!-- bench:{open_at[1]}:end -->")
    return "".join(out)


def split_name(name: str) -> tuple[str, str | None]:
    key, _, view = name.partition(":")
    return key, view or None


def write_docs(docs: Path, root: Path, results: Path, suites: Sequence[str]) -> list[str]:
    """Rewrite the regions of ``docs`` that belong to ``suites``; return the keys rewritten.

    The file is written whole (to a temporary file, then renamed) only when every region
    rendered, so an error leaves it as it was.
    """
    render = renderer(root, results)
    done: list[str] = []

    def keep(key: str, view: str | None) -> bool:
        path = results / f"{key}.json"
        document = json.loads(path.read_text()) if path.is_file() else {}
        return suite_of(key, document) in suites

    def render_region(key: str, view: str | None) -> str:
        _, text = render(key, view)
        done.append(key if view is None else f"{key}:{view}")
        return text

    text = docs.read_text()
    new = rewrite_regions(text, render_region, keep)
    if new != text:
        tmp = docs.with_name(docs.name + ".tmp")
        tmp.write_text(new)
        tmp.replace(docs)
    return done


# -- command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suites", nargs="*", metavar="SUITE",
                        help=f"suites to run (default: all): {', '.join(SUITES)}")
    parser.add_argument("--quick", action="store_true",
                        help="smoke runs at tiny sizes; results go to bench/results/quick/")
    parser.add_argument("--write-docs", action="store_true",
                        help="rewrite the generated regions of docs/benchmarks.md from the results")
    parser.add_argument("--no-run", dest="run_suites", action="store_false",
                        help="run nothing: print (or, with --write-docs, write) tables from "
                             "the results already there")
    parser.add_argument("--list", action="store_true", help="list the suites and their commands")
    parser.add_argument("--root", help="the source checkout (default: found from the current "
                                       "folder or the installed package)")
    parser.add_argument("--results", help="results folder (default bench/results, or "
                                          "bench/results/quick with --quick)")
    parser.add_argument("--docs", help="the docs file (default docs/benchmarks.md)")


def bench_command(args: argparse.Namespace) -> int:
    names = check_suites(args.suites)
    if args.list:
        for name in names:
            suite = SUITES[name]
            print(f"{name:17} {suite.what}\n{'':17} bench/{suite.script} {' '.join(suite.args)}")
        return 0
    if args.quick and args.write_docs:
        raise BenchError("--write-docs renders docs from full runs; --quick results are smoke "
                         "runs (drop one of the two)")
    root = find_checkout(args.root)
    results = Path(args.results).resolve() if args.results else \
        root / "bench" / "results" / ("quick" if args.quick else "")
    if args.run_suites:
        failed = run_suites(names, root, results, args.quick)
        if failed:
            print(f"recur bench: {len(failed)} suite(s) failed: {', '.join(failed)}; docs "
                  f"not rewritten", file=sys.stderr)
            return 1
    elif not args.write_docs:
        render = renderer(root, results)
        for name in names:
            if (results / f"{name}.json").is_file():
                print(f"\n## {name} ({results / (name + '.json')})\n\n{render(name, None)[1]}")
            else:
                print(f"\n## {name}: no results in {results}")
    if args.write_docs:
        docs = Path(args.docs) if args.docs else root / "docs" / "benchmarks.md"
        if not docs.is_file():
            raise BenchError(f"--docs must be an existing markdown file, got {docs}")
        written = write_docs(docs, root, results, names)
        print(f"rewrote {len(written)} region(s) of {docs}: {', '.join(written) or 'none'}")
    return 0


def main(argv: Sequence[str] | None = None, root: Path | None = None) -> int:
    """``bench/run_all.py``: the same as ``recur bench``, with this checkout as the root."""
    parser = argparse.ArgumentParser(prog="bench/run_all.py",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if root is not None and args.root is None:
        args.root = str(root)
    try:
        return bench_command(args)
    except BenchError as error:
        print(f"bench/run_all.py: error: {error}", file=sys.stderr)
        return 2
