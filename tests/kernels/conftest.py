"""Fixtures shared by the compiled-kernel tests."""

import pytest
import torch


@pytest.fixture(params=[1, 3], ids=["1-thread", "3-threads"])
def threads(request):
    """Torch threads: with 3, a batch of 5 rows runs in 3 uneven blocks of rows
    (kernels/row_blocks.h), each with its own partial bias-gradient sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)
