"""The checkpoint folder: rebuilt from itself alone, atomic, and loud when damaged."""

import json

import pytest
import torch
from tiny_tasks import Classify, Regression, TinyLSTMClassifier
from torch import nn

from recur.training import (
    CheckpointError,
    TrainConfig,
    Trainer,
    load,
    load_checkpoint,
    read_config,
    register_task,
    save_checkpoint,
)
from recur.training import checkpoint as checkpoint_module


def trained_run(tmp_path, task=None, epochs=1):
    config = TrainConfig(epochs=epochs, lr=0.05, quiet=True, device="cpu")
    trainer = Trainer(task or Regression(), config, tmp_path / "run")
    trainer.fit()
    return trainer


def test_round_trip_through_the_registry(tmp_path):
    trainer = trained_run(tmp_path, Classify())
    loaded = load_checkpoint(tmp_path / "run" / "best")
    assert isinstance(loaded.model, TinyLSTMClassifier) and not loaded.model.training
    for name, tensor in trainer.raw_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor)
    config = loaded.config
    assert config["task"] == "tiny_classify" and config["task_module"] == "tiny_tasks"
    assert set(config["versions"]) == {"python", "torch", "numpy", "recur"}
    assert TrainConfig.from_dict(config["training"]) == trainer.config
    assert config["seed"] == 0 and config["metrics"]["accuracy"] >= 0


def test_run_folder_loads_its_best_model_and_task_files_are_saved(tmp_path):
    trained_run(tmp_path)
    assert isinstance(load(tmp_path / "run"), nn.Linear)
    assert (tmp_path / "run" / "best" / "notes.txt").exists()
    last = tmp_path / "run" / "last"
    assert {p.name for p in last.iterdir()} == {
        "model.safetensors",
        "config.json",
        "notes.txt",
        "optimizer.pt",
        "trainer_state.json",
    }
    saved = torch.load(last / "optimizer.pt", weights_only=True)  # no pickled objects
    assert saved["optimizer"]["param_groups"][0]["lr"] == 0.05


def test_corrupted_safetensors_raises_checkpoint_error_naming_the_file(tmp_path):
    trained_run(tmp_path)
    weights = tmp_path / "run" / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])  # truncated, as by a full disk
    with pytest.raises(CheckpointError, match=r"model\.safetensors is unreadable or corrupted"):
        load(tmp_path / "run")


def test_corrupted_config_json_raises_checkpoint_error_naming_the_file(tmp_path):
    trained_run(tmp_path)
    (tmp_path / "run" / "best" / "config.json").write_text('{"task": "tiny_reg')
    with pytest.raises(CheckpointError, match=r"config\.json is unreadable or corrupted"):
        load(tmp_path / "run")


def test_corrupted_optimizer_state_on_resume_names_the_file(tmp_path):
    trained_run(tmp_path)
    optimizer = tmp_path / "run" / "last" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"optimizer\.pt is unreadable or corrupted"):
        Trainer(Regression(), TrainConfig(quiet=True), tmp_path / "run", resume=True)


def test_weights_that_do_not_fit_the_config_are_a_clear_error(tmp_path):
    trained_run(tmp_path)
    config_file = tmp_path / "run" / "best" / "config.json"
    config = json.loads(config_file.read_text())
    config["configs"]["model"]["dim"] = 5
    config_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not fit the model its config.json describes"):
        load(tmp_path / "run")


def test_folder_of_another_task_is_a_clear_error(tmp_path):
    trained_run(tmp_path)
    with pytest.raises(
        CheckpointError, match="holds a 'tiny_regression' checkpoint, not a 'sentiment' one"
    ):
        load(tmp_path / "run", task="sentiment")
    with pytest.raises(CheckpointError, match="not one of task 'tiny_classify'"):
        Trainer(Classify(), TrainConfig(quiet=True), tmp_path / "run", resume=True)


def test_missing_folder_and_non_checkpoint_folder_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nowhere: the folder does not"):
        load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="is not a recur checkpoint or run folder"):
        load(tmp_path / "empty")


def test_unregistered_task_is_a_clear_error(tmp_path):
    task = Regression()
    task.name = "never_registered"
    save_checkpoint(tmp_path / "ckpt", task.build_model(), task)
    with pytest.raises(CheckpointError, match="no loader registered for task 'never_registered'"):
        load(tmp_path / "ckpt")
    register_task("never_registered", lambda configs, folder: nn.Linear(3, 1))
    assert isinstance(load(tmp_path / "ckpt"), nn.Linear)


def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    task = Regression()
    old_model, new_model = task.build_model(), task.build_model()
    save_checkpoint(tmp_path / "last", old_model, task, optimizer_state={"step": 1})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full)  # after the weights
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path / "last", new_model, task, optimizer_state={"step": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["last"]  # no temporary folder left over
    loaded = load(tmp_path / "last")
    assert torch.equal(loaded.weight, old_model.weight)
    assert not torch.equal(loaded.weight, new_model.weight)


def test_crash_between_the_two_renames_falls_back_to_the_old_checkpoint(tmp_path):
    task = Regression()
    model = task.build_model()
    save_checkpoint(tmp_path / "run" / "best", model, task)
    (tmp_path / "run" / "best").rename(tmp_path / "run" / ".best.old")  # the state mid-swap
    assert torch.equal(load(tmp_path / "run").weight, model.weight)
    assert read_config(tmp_path / "run")["task"] == "tiny_regression"
    save_checkpoint(tmp_path / "run" / "best", model, task)  # the next save cleans up
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best"]


def test_tied_weights_round_trip(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(5, 4)
            self.out = nn.Linear(4, 5, bias=False)
            self.out.weight = self.embed.weight

    task = Regression()
    task.name = "tied"
    register_task("tied", lambda configs, folder: Tied())
    model = Tied()
    save_checkpoint(tmp_path / "ckpt", model, task)
    loaded = load(tmp_path / "ckpt")
    assert loaded.out.weight is loaded.embed.weight
    assert torch.equal(loaded.embed.weight, model.embed.weight)
