"""Shared test set-up: deterministic seeds, two threads, and the data folder default."""

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
if "RECUR_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["RECUR_DATA"] = str(SHARED_DATA)

# One thread: tests run tiny models, where a second OpenMP thread only adds synchronisation,
# and on a busy 2-core machine it can make a step 50x slower (measured: 76 s vs 1.2 s/epoch).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _subnormals_kept():
    """The Trainer and the CLI flush subnormals to zero (a process-wide CPU mode); each
    test starts and ends with them kept, so no test depends on another having trained."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture
def one_blas_thread():
    """statsmodels' BLAS calls with 2 threads on a busy 2-core machine ran 50x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
