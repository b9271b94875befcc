"""A run killed mid-epoch and resumed ends bit-identical to one never interrupted.

Each run is a subprocess (``tiny_tasks.py train``) with one torch thread; the killed one
sends itself SIGKILL right after a chosen step — no cleanup, no flush — like a crash or
a pre-empted job. The last checkpoint is then behind the kill, mid-epoch, and
metrics.jsonl holds records past it, which the resumed run must drop and redo.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent


def start(*jobs: dict) -> subprocess.Popen:
    """Run ``tiny_tasks.run_jobs(jobs)`` in a fresh Python process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    jobs_json = json.dumps([{k: str(v) if k == "out" else v for k, v in j.items()} for j in jobs])
    command = [sys.executable, str(HERE / "tiny_tasks.py"), jobs_json]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> int:
    _, err = process.communicate(timeout=180)
    if process.returncode not in (0, -signal.SIGKILL):
        pytest.fail(err.decode())
    return process.returncode


def comparable_records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in ("time", "items_per_s")}
        for line in lines
    ]


# task: (kill after step, the last checkpoint's step, its batch in epoch 1)
CASES = {
    "classify": (9, 8, 4),  # LSTM + dropout, grad_accum 2: 6 steps per epoch
    "stream": (7, 6, 2),  # TBPTT, the carried state is saved too: 5 steps per epoch
}


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    killed = [
        start({"task": t, "out": tmp_path / t / "killed", "kill_at": k})
        for t, (k, _, _) in CASES.items()
    ]
    assert [finish(p) for p in killed] == [-signal.SIGKILL] * len(CASES)
    for task, (_, step, batch_in_epoch) in CASES.items():
        state = json.loads((tmp_path / task / "killed" / "last" / "trainer_state.json").read_text())
        assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (step, 1, batch_in_epoch)

    # one process resumes each killed run, then trains each from scratch, uninterrupted
    jobs = [{"task": t, "out": tmp_path / t / "killed", "resume": True} for t in CASES]
    jobs += [{"task": t, "out": tmp_path / t / "reference"} for t in CASES]
    assert finish(start(*jobs)) == 0

    for task in CASES:
        reference, resumed = tmp_path / task / "reference", tmp_path / task / "killed"
        for folder in ("last", "best"):
            expected = load_file(reference / folder / "model.safetensors")
            got = load_file(resumed / folder / "model.safetensors")
            assert expected.keys() == got.keys()
            for name, tensor in expected.items():
                assert got[name].equal(tensor), f"{task}: {folder}/{name} differs after resume"
        assert comparable_records(resumed) == comparable_records(reference), task
