"""Weight averaging (TrainConfig.ema_decay): the average against one computed by hand from
the weights after each step, what validation and best/ hold, the raw weights training on,
and resume."""

import json

import pytest
import torch
from tiny_tasks import Regression

from recur.training import TrainConfig, Trainer, load


def config(**changes) -> TrainConfig:
    base = dict(epochs=2, optimizer="sgd", lr=0.05, quiet=True, device="cpu", log_every=1,
                ema_decay=0.9)
    return TrainConfig(**(base | changes))


def records(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def fit_recording_weights(trainer: Trainer) -> dict[int, list[torch.Tensor]]:
    """Fit; return the raw weights after every optimizer step, by step number."""
    seen: dict[int, list[torch.Tensor]] = {}

    def keep(t: Trainer, record: dict) -> None:
        if record["kind"] == "train":
            seen[record["step"]] = [p.detach().clone() for p in t.params]

    trainer.callbacks.append(keep)
    trainer.fit()
    return seen


def ema_by_hand(initial: list[torch.Tensor], after: dict[int, list[torch.Tensor]],
                decay: float, upto: int) -> list[torch.Tensor]:
    average = [t.clone() for t in initial]
    for n in range(upto):
        d = min(decay, (1 + n) / (10 + n))
        average = [d * a + (1 - d) * w for a, w in zip(average, after[n + 1], strict=True)]
    return average


def test_the_average_is_the_ema_of_the_weights_after_each_step(tmp_path):
    trainer = Trainer(Regression(), config(), tmp_path / "run")
    initial = [p.detach().clone() for p in trainer.params]
    after = fit_recording_weights(trainer)
    assert len(after) == 16 and trainer.state.averaged_steps == 16
    expected = ema_by_hand(initial, after, 0.9, 16)
    for got, want in zip(trainer.average, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    # the raw weights train on: after fit the model holds them, not the average
    for param, raw in zip(trainer.params, after[16], strict=True):
        assert torch.equal(param, raw)
    assert not torch.allclose(trainer.params[0], trainer.average[0])


def test_validation_and_best_use_the_average_and_record_the_raw_weights_too(tmp_path):
    trainer = Trainer(Regression(), config(), tmp_path / "run")
    initial = [p.detach().clone() for p in trainer.params]
    after = fit_recording_weights(trainer)
    valid = records(tmp_path / "run", "valid")
    assert [r["step"] for r in valid] == [8, 16]
    for r in valid:
        assert {"valid_loss", "valid_mae", "valid_raw_loss", "valid_raw_mae"} <= set(r)
        assert r["valid_loss"] != r["valid_raw_loss"]
    best = max((r for r in valid if r["best"]), key=lambda r: r["step"])
    saved = load(tmp_path / "run")
    expected = ema_by_hand(initial, after, 0.9, best["step"])
    for got, want in zip(saved.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    # the recorded valid_loss is the averaged model's, the raw one is the trained weights'
    with trainer.averaged_weights():
        averaged_loss = trainer.evaluate()["loss"]
    raw_loss = trainer.evaluate()["loss"]
    assert valid[-1]["valid_loss"] == pytest.approx(averaged_loss)
    assert valid[-1]["valid_raw_loss"] == pytest.approx(raw_loss)


def test_averaged_weights_puts_the_raw_weights_back_after_an_error(tmp_path):
    trainer = Trainer(Regression(), config(max_steps=3), tmp_path / "run")
    trainer.fit()
    raw = [p.detach().clone() for p in trainer.params]
    with pytest.raises(RuntimeError, match="boom"), trainer.averaged_weights():
        assert torch.equal(trainer.params[0], trainer.average[0])
        raise RuntimeError("boom")
    for param, saved in zip(trainer.params, raw, strict=True):
        assert torch.equal(param, saved)


def test_without_ema_there_is_no_average_and_no_raw_records(tmp_path):
    trainer = Trainer(Regression(), config(ema_decay=None), tmp_path / "run")
    trainer.fit()
    assert trainer.average is None and trainer.state.averaged_steps == 0
    assert not any(k.startswith("valid_raw_") for r in records(tmp_path / "run", "valid")
                   for k in r)
    with trainer.averaged_weights():  # a no-op
        pass


def test_resume_carries_the_average_on(tmp_path):
    whole = Trainer(Regression(), config(epochs=2), tmp_path / "whole")
    whole.fit()
    Trainer(Regression(), config(epochs=1), tmp_path / "split").fit()
    resumed = Trainer(Regression(), config(epochs=2), tmp_path / "split", resume=True)
    resumed.fit()
    assert resumed.state.averaged_steps == whole.state.averaged_steps == 16
    for a, b in zip(whole.average, resumed.average, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_run_without_ema_can_resume_with_it(tmp_path):
    Trainer(Regression(), config(epochs=1, ema_decay=None), tmp_path / "run").fit()
    resumed = Trainer(Regression(), config(epochs=2), tmp_path / "run", resume=True)
    start = [p.detach().clone() for p in resumed.params]
    for average, param in zip(resumed.average, start, strict=True):
        assert torch.equal(average, param)  # the average starts from the resumed weights
    resumed.fit()
    assert resumed.state.averaged_steps == 8


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1, "0.9", float("nan")])
def test_ema_decay_outside_0_1_is_a_clear_error(decay):
    with pytest.raises(ValueError, match=r"ema_decay must be a number in \(0, 1\), got"):
        TrainConfig(ema_decay=decay)


@pytest.mark.parametrize("argv", [
    ["train", "sentiment", "--out", "o"],
    ["train", "tagger", "--train", "t.conll", "--out", "o"],
    ["train", "translate", "--train-src", "s", "--train-tgt", "t", "--out", "o"],
    ["train", "lm", "--train", "t.txt", "--out", "o"],
])
def test_train_commands_take_ema_into_their_training_config(argv):
    import importlib

    from recur.cli import build_parser

    args = build_parser().parse_args([*argv, "--ema", "0.995"])
    module = importlib.import_module(args.run.__module__)
    training = module.configs_from_args(args)[-1]
    assert training.ema_decay == 0.995
    assert module.configs_from_args(build_parser().parse_args(argv))[-1].ema_decay is None


def test_an_average_that_does_not_fit_the_model_is_a_clear_error_on_resume(tmp_path):
    from recur.training.checkpoint import CheckpointError

    Trainer(Regression(), config(epochs=1), tmp_path / "run").fit()
    file = tmp_path / "run" / "last" / "optimizer.pt"
    saved = torch.load(file, weights_only=True)
    saved["average"] = [torch.zeros(2, 2)]
    torch.save(saved, file)
    with pytest.raises(CheckpointError, match=r"optimizer.pt: the averaged weights do not match "
                       r"the model's 2 trainable parameters"):
        Trainer(Regression(), config(epochs=2), tmp_path / "run", resume=True)
