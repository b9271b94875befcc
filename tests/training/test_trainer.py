"""The Trainer's loop: learning, clipping, non-finite steps, stopping, precision, logs."""

import json
import math
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from tiny_tasks import Classify, Regression, Stream
from torch import nn

from recur.training import TrainConfig, Trainer, learning_rate, load, plot_run


def config(**changes) -> TrainConfig:
    base = dict(epochs=5, optimizer="adam", lr=0.05, quiet=True, device="cpu", log_every=1)
    return TrainConfig(**(base | changes))


def records(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_tiny_regression_learns(tmp_path):
    task = Regression()
    trainer = Trainer(task, config(epochs=8, lr=0.1), tmp_path / "run")
    before = trainer.evaluate()["loss"]
    result = trainer.fit()
    assert result.stop_reason == "epochs" and result.epochs == 8 and result.steps == 8 * 8
    assert result.valid_metrics["loss"] < 0.01 * before
    assert (tmp_path / "run" / "best" / "notes.txt").read_text() == "a tiny regression\n"


def test_lstm_classifier_learns_and_best_model_is_kept(tmp_path):
    result = Trainer(
        Classify(), config(epochs=8, lr=0.02, monitor="accuracy", mode="max"), tmp_path / "run"
    ).fit()
    assert result.best_metric >= 0.8
    valid = records(tmp_path / "run", "valid")
    best = max(valid, key=lambda r: r["valid_accuracy"])
    saved = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert saved["step"] == best["step"] and saved["metrics"]["accuracy"] == best["valid_accuracy"]


def test_clipping_logs_the_pre_clip_gradient_norm(tmp_path):
    task = Regression()
    model = task.build_model()
    trainer = Trainer(
        task, config(optimizer="sgd", clip_norm=0.01, max_steps=1, seed=0), tmp_path / "run"
    )
    model.load_state_dict(trainer.raw_model.state_dict())
    batch = next(iter(task.train_batches(0)))
    task.loss(model, batch).loss.backward()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    assert expected > 1.0  # far above clip_norm, so a post-clip norm would read 0.01
    trainer.fit()
    logged = records(tmp_path / "run", "train")[0]["grad_norm"]
    assert logged == pytest.approx(expected, rel=1e-5)
    step = {n: p.detach() - model.state_dict()[n] for n, p in trainer.raw_model.named_parameters()}
    lr = trainer.config.lr
    assert torch.cat([d.flatten() for d in step.values()]).norm() == pytest.approx(0.01 * lr)


def test_nonfinite_loss_step_is_skipped_and_training_goes_on(tmp_path):
    task = Regression(poison={(0, 3)})
    trainer = Trainer(task, config(epochs=2), tmp_path / "run")
    before = {}

    def watch(trainer, record):
        if record["kind"] == "train" and record["step"] == 3:
            before.update({n: p.clone() for n, p in trainer.raw_model.named_parameters()})
        if record["kind"] == "train" and record["step"] == 4:  # the poisoned step
            for name, p in trainer.raw_model.named_parameters():
                assert torch.equal(p, before[name]), "a non-finite step changed the weights"

    trainer.callbacks.append(watch)
    result = trainer.fit()
    assert result.stop_reason == "epochs" and result.skipped_steps == 1
    assert math.isfinite(result.valid_metrics["loss"])
    train = records(tmp_path / "run", "train")
    assert train[3]["loss"] is None and train[3]["skipped_steps"] == 1  # NaN → null in JSON


def test_nonfinite_steps_in_a_row_stop_and_keep_the_last_good_checkpoint(tmp_path, capsys):
    poison = {(1, i) for i in range(2, 8)}  # epoch 1 diverges from its third batch on
    trainer = Trainer(
        Regression(poison=poison), config(epochs=4, max_nonfinite=3), tmp_path / "run"
    )
    result = trainer.fit()
    assert result.stop_reason == "nonfinite" and result.steps == 8 + 2 + 3
    assert "3 non-finite steps in a row" in result.message and "step 8" in result.message
    assert "non-finite steps in a row" in capsys.readouterr().err
    last = json.loads((tmp_path / "run" / "last" / "trainer_state.json").read_text())
    assert last["step"] == 8 and last["epoch"] == 1  # the end of epoch 0, before it diverged


def test_early_stopping_after_patience_validations_without_improvement(tmp_path):
    # "higher loss is better" while the loss falls: only the first validation is a best
    cfg = config(epochs=20, patience=2, monitor="loss", mode="max")
    result = Trainer(Regression(), cfg, tmp_path / "run").fit()
    assert result.stop_reason == "early_stopping" and result.epochs == 3
    valid = records(tmp_path / "run", "valid")
    assert [r["best"] for r in valid] == [True, False, False]


def test_time_budget_ends_cleanly_with_evaluation_and_checkpoints(tmp_path):
    task = Regression(sleep=0.02, num_batches=1000)
    result = Trainer(task, config(time_budget_min=0.3 / 60), tmp_path / "run").fit()
    assert result.stop_reason == "time_budget" and result.epochs == 0 and 0 < result.steps < 100
    assert "loss" in result.valid_metrics
    state = json.loads((tmp_path / "run" / "last" / "trainer_state.json").read_text())
    assert state["step"] == result.steps and state["batch_in_epoch"] == result.steps
    assert isinstance(load(tmp_path / "run"), nn.Linear)


def subnormals_flushed() -> bool:
    """True when the CPU's flush-to-zero mode is on: the smallest float64 subnormal reads 0."""
    return torch.tensor([5e-324], dtype=torch.float64).item() == 0.0


@pytest.mark.parametrize("flush", [True, False])
def test_fit_flushes_subnormals_on_cpu_unless_told_not_to(tmp_path, flush):
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    assert not subnormals_flushed()
    Trainer(Regression(), config(max_steps=1, flush_denormals=flush, device="cpu"),
            tmp_path / "run").fit()
    assert subnormals_flushed() == flush


RSS_DROP = """
import sys, torch
from recur.training import reuse_freed_memory
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
if sys.argv[1] == "on":
    assert reuse_freed_memory()
x = torch.ones(32 * 2**20)                          # 128 MiB, touched
before = rss()
del x
print((before - rss()) / 2**20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not Path("/proc/self/statm").exists(),
                    reason="glibc's malloc on Linux only")
def test_reuse_freed_memory_keeps_a_freed_large_tensor_in_the_process():
    """By default glibc unmaps a freed 128 MiB block at once (the next one page-faults anew);
    after reuse_freed_memory() the block stays in the heap for the next allocation."""
    def drop_mib(mode: str) -> float:
        done = subprocess.run([sys.executable, "-c", RSS_DROP, mode], capture_output=True,
                              text=True, check=True)
        return float(done.stdout.strip().splitlines()[-1])

    assert drop_mib("off") > 100
    assert drop_mib("on") < 16


@pytest.mark.parametrize("reuse", [True, False])
def test_fit_reuses_freed_memory_on_cpu_unless_told_not_to(tmp_path, monkeypatch, reuse):
    from recur.training import trainer

    calls = []
    monkeypatch.setattr(trainer, "reuse_freed_memory", lambda: calls.append(1) or True)
    Trainer(Regression(), config(max_steps=1, reuse_memory=reuse, device="cpu"),
            tmp_path / "run").fit()
    assert bool(calls) == reuse


def test_max_steps_stops_mid_epoch(tmp_path):
    result = Trainer(Regression(), config(max_steps=5), tmp_path / "run").fit()
    assert result.stop_reason == "max_steps" and result.steps == 5 and result.epochs == 0


def test_grad_accum_of_two_half_batches_equals_one_full_batch(tmp_path):
    full = Trainer(
        Regression(batch_size=8, num_batches=4),
        config(optimizer="sgd", epochs=2),
        tmp_path / "full",
    )
    full.fit()
    half = Trainer(
        Regression(batch_size=4, num_batches=8),
        config(optimizer="sgd", epochs=2, grad_accum=2),
        tmp_path / "half",
    )
    half.fit()
    for a, b in zip(full.raw_model.parameters(), half.raw_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert half.state.step == full.state.step == 8


def test_existing_out_dir_needs_overwrite_or_resume(tmp_path):
    Trainer(Regression(), config(epochs=1), tmp_path / "run").fit()
    with pytest.raises(
        FileExistsError, match="exists and is not empty; pass --overwrite or --resume"
    ):
        Trainer(Regression(), config(epochs=1), tmp_path / "run")
    assert Trainer(Regression(), config(epochs=1), tmp_path / "run", overwrite=True).fit()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="does not look like a recur run folder"):
        Trainer(Regression(), config(epochs=1), tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_resume_of_a_finished_run_trains_on_when_epochs_grow(tmp_path):
    Trainer(Regression(), config(epochs=2), tmp_path / "run").fit()
    result = Trainer(Regression(), config(epochs=3), tmp_path / "run", resume=True).fit()
    assert result.epochs == 3 and result.steps == 24
    assert [r["step"] for r in records(tmp_path / "run", "valid")] == [8, 16, 24]


def test_bf16_autocast_runs_on_cpu(tmp_path):
    task, dtypes = Regression(), set()
    plain_loss = task.loss

    def loss(model, batch, state=None):
        dtypes.add(model(batch[0]).dtype)
        return plain_loss(model, batch, state)

    task.loss = loss
    with warnings.catch_warnings():
        # on CPUs without native bf16 the Trainer warns that bf16 is slow there; fine here
        warnings.filterwarnings("ignore", message="precision 'bf16' on a CPU without native")
        trainer = Trainer(task, config(epochs=4, lr=0.1, precision="bf16"), tmp_path / "run")
    before = trainer.evaluate()["loss"]
    result = trainer.fit()
    assert dtypes == {torch.bfloat16}  # the forward ran under autocast...
    assert result.valid_metrics["loss"] < 0.1 * before  # ...and still learned
    assert all(p.dtype == torch.float32 for p in load(tmp_path / "run").parameters())


def test_bf16_on_cpu_without_native_bf16_warns(tmp_path):
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has native bf16")
    with pytest.warns(UserWarning, match="no AVX-512 BF16 / AMX"):
        Trainer(Regression(), config(precision="bf16"), tmp_path / "run")


def test_fp16_without_cuda_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="precision 'fp16' needs a CUDA device"):
        Trainer(Regression(), config(precision="fp16", device="auto"), tmp_path / "run")


def test_monitor_missing_from_metrics_is_named(tmp_path):
    with pytest.raises(KeyError, match="monitor 'accuracy' is not among the validation metrics"):
        Trainer(Regression(), config(epochs=1, monitor="accuracy"), tmp_path / "run").fit()


def test_run_without_validation_keeps_the_latest_model_as_best(tmp_path):
    result = Trainer(Regression(valid=False), config(epochs=2), tmp_path / "run").fit()
    assert result.valid_metrics == {} and result.best_metric is None
    best = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert best["step"] == 16


def test_learning_rate_schedules():
    cfg = TrainConfig(lr=1.0, warmup_steps=4)
    assert [learning_rate(cfg, s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cfg = TrainConfig(lr=1.0, schedule="step", step_size=2, gamma=0.5)
    assert [learning_rate(cfg, s) for s in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    cfg = TrainConfig(lr=1.0, schedule="cosine")
    assert learning_rate(cfg, 0, 10) == 1.0
    assert learning_rate(cfg, 5, 10) == pytest.approx(0.5)
    assert learning_rate(cfg, 10, 10) == pytest.approx(0.0)
    assert learning_rate(TrainConfig(lr=1.0, schedule="plateau"), 7, None, 0.1) == 0.1


def test_plateau_schedule_cuts_lr_after_bad_validations(tmp_path):
    # "higher loss is better" while the loss falls: every validation after the first is bad
    cfg = config(epochs=4, schedule="plateau", gamma=0.5, monitor="loss", mode="max")
    Trainer(Regression(), cfg, tmp_path / "run").fit()
    lrs = [r["lr"] for r in records(tmp_path / "run", "train")]  # lrs[i]: step i + 1
    assert lrs[0] == lrs[15] == 0.05 and lrs[16] == lrs[23] == 0.025 and lrs[24] == 0.0125


def test_cosine_without_a_step_count_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="schedule 'cosine' needs max_steps"):
        Trainer(Regression(), config(schedule="cosine"), tmp_path / "run")


def test_metrics_jsonl_records_under_tbptt(tmp_path):
    cfg = config(epochs=2, tbptt=True, log_every=3, clip_norm=1.0)
    Trainer(Stream(), cfg, tmp_path / "run").fit()
    train = records(tmp_path / "run", "train")
    assert set(train[0]) >= {"step", "epoch", "loss", "lr", "grad_norm", "items_per_s", "time"}
    assert [r["step"] for r in train][:3] == [3, 6, 9]
    assert {"valid_loss", "step", "epoch", "time"} <= set(records(tmp_path / "run", "valid")[0])


def test_plot_run_writes_one_png_per_curve(tmp_path):
    Trainer(Regression(), config(epochs=3, log_every=2), tmp_path / "run").fit()
    paths = plot_run(tmp_path / "run")
    assert [p.name for p in paths] == ["loss.png", "lr.png", "grad_norm.png", "valid_metrics.png"]
    assert all(p.parent == tmp_path / "run" / "plots" for p in paths)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_predict_runs_task_predict_in_eval_mode(tmp_path):
    task = Regression()
    trainer = Trainer(task, config(epochs=1), tmp_path / "run")
    out = trainer.predict([(task.x_valid[:5], None)])
    assert out[0].shape == (5, 1) and not out[0].requires_grad


def test_request_stop_from_a_training_callback_ends_fit(tmp_path):
    def stop_at_step_3(trainer, record):
        if record.get("kind") == "train" and record["step"] >= 3:
            trainer.request_stop("target_met")

    cfg = config(epochs=5, log_every=1)
    result = Trainer(Regression(), cfg, tmp_path / "run", callbacks=[stop_at_step_3]).fit()
    assert result.stop_reason == "target_met"
    assert result.steps == 3


def test_cosine_by_time_follows_the_budget_fraction():
    cfg = TrainConfig(lr=1.0, schedule="cosine", schedule_by_time=True, time_budget_min=1.0)
    assert learning_rate(cfg, 0, None, time_fraction=0.0) == 1.0
    assert learning_rate(cfg, 0, None, time_fraction=0.5) == pytest.approx(0.5)
    assert learning_rate(cfg, 3, 4, time_fraction=0.1) == pytest.approx(0.5 * (1 + math.cos(0.75 * math.pi)))
    assert learning_rate(cfg, 0, None, time_fraction=1.7) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="schedule_by_time needs time_budget_min"):
        TrainConfig(schedule="cosine", schedule_by_time=True)


@pytest.mark.parametrize(("env", "flushed"), [(None, True), ("0", False)])
def test_the_cli_flushes_subnormals_first_unless_the_environment_says_0(monkeypatch, capsys,
                                                                        env, flushed):
    from recur import cli

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    if env is None:
        monkeypatch.delenv("RECUR_FLUSH_DENORMALS", raising=False)
    else:
        monkeypatch.setenv("RECUR_FLUSH_DENORMALS", env)
    assert cli.main(["bench", "--list"]) == 0
    assert subnormals_flushed() == flushed


@pytest.mark.parametrize(("env", "reused"), [(None, True), ("0", False)])
def test_the_cli_reuses_freed_memory_unless_the_environment_says_0(monkeypatch, env, reused):
    from recur import cli
    from recur.training import config as config_module

    calls = []
    monkeypatch.setattr(config_module, "reuse_freed_memory", lambda: calls.append(1) or True)
    if env is None:
        monkeypatch.delenv("RECUR_REUSE_MEMORY", raising=False)
    else:
        monkeypatch.setenv("RECUR_REUSE_MEMORY", env)
    assert cli.main(["bench", "--list"]) == 0
    assert bool(calls) == reused
