"""One torch thread for the training tests.

Their models are tiny, and on the shared 2-core machine a second OpenMP thread only
waits on the first: the LSTM classifier test measured 28 s with two threads under load
and 2 s with one. The previous count is restored after each test.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
