"""torchrun-style data parallelism: two processes train exactly like one with their batch."""

import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from tiny_tasks import Regression, ddp_config, ddp_worker

from recur.training import Trainer
from recur.training.distributed import DistEnv, all_reduce_mean, environment, shard


def test_shard_gives_batch_i_to_rank_i_mod_world_size():
    batches = range(7)
    assert [list(shard(batches, DistEnv(r, 3))) for r in range(3)] == [[0, 3], [1, 4], [2, 5]]
    every = [list(shard(batches, DistEnv(r, 3), drop_incomplete=False)) for r in range(3)]
    assert every == [[0, 3, 6], [1, 4], [2, 5]]  # evaluation uses every batch once
    assert list(shard(batches, DistEnv())) == list(batches)


def test_environment_reads_torchrun_variables(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert environment() == DistEnv(3, 4, 1) and not environment().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK must be in \\[0, WORLD_SIZE\\), got RANK=4"):
        environment()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="environment variable RANK must be an int, got 'x'"):
        environment()


def test_single_process_reductions_are_identity():
    assert all_reduce_mean({"loss": 1.5, "matrix": [[1]]}, 4, DistEnv()) == {
        "loss": 1.5,
        "matrix": [[1]],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # 2 ranks × batches of 4 rows (gloo, DDP averages the gradients) ...
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    # ... take the same steps as 1 process with the same 8 rows per batch
    single = Trainer(Regression(batch_size=8, num_batches=8), ddp_config(), tmp_path / "single")
    result = single.fit()

    weights = load_file(tmp_path / "ddp" / "last" / "model.safetensors")
    for name, expected in single.raw_model.state_dict().items():
        torch.testing.assert_close(weights[name], expected, rtol=0, atol=1e-6)
    ddp_state = (tmp_path / "ddp" / "last" / "trainer_state.json").read_text()
    assert f'"step": {result.steps}' in ddp_state
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((tmp_path / "single" / "metrics.jsonl").read_text().splitlines())
