"""Shared test set-up: deterministic seeds, two threads, and the data folder default."""

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
if "RECUR_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["RECUR_DATA"] = str(SHARED_DATA)

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
