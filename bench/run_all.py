"""Run the benchmark suite: every script in bench/, its tables, docs/benchmarks.md.

The same code as ``recur bench`` (``recur.benchsuite``), with this checkout as the root:

    .venv/bin/python bench/run_all.py --list
    .venv/bin/python bench/run_all.py tagger --quick
    .venv/bin/python bench/run_all.py --no-run --write-docs     # docs from bench/results/
    /work/shared/bin/longrun .venv/bin/python bench/run_all.py layers memory --write-docs
"""

import sys
from pathlib import Path

from recur.benchsuite import main

if __name__ == "__main__":
    sys.exit(main(root=Path(__file__).resolve().parents[1]))
