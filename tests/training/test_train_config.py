"""TrainConfig checks every field at construction and round-trips through JSON."""

import dataclasses
import json

import pytest

from recur.training import TrainConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("optimizer", "adm", "optimizer must be one of sgd, adam, adamw, got 'adm'"),
        ("schedule", "linear", "schedule must be one of constant, step, cosine, plateau"),
        ("precision", "fp8", "precision must be one of fp32, bf16, fp16, got 'fp8'"),
        ("device", "tpu", "device must be one of auto, cpu, cuda, mps, got 'tpu'"),
        ("mode", "best", "mode must be one of min, max, got 'best'"),
        ("epochs", 0, "epochs must be a positive int, got 0"),
        ("epochs", True, "epochs must be a positive int, got True"),
        ("epochs", 2.5, "epochs must be a positive int, got 2.5"),
        ("max_steps", -1, "max_steps must be a positive int or None, got -1"),
        ("lr", -0.1, "lr must be a positive number, got -0.1"),
        ("lr", float("nan"), "lr must be a positive number, got nan"),
        ("momentum", 1.0, "momentum must be a number in [0, 1), got 1.0"),
        ("weight_decay", -1e-4, "weight_decay must be a number in [0, inf), got -0.0001"),
        ("betas", (0.9,), "betas must be two numbers in [0, 1), got (0.9,)"),
        ("gamma", 0.0, "gamma must be a number in (0, 1], got 0.0"),
        ("warmup_steps", -5, "warmup_steps must be an int >= 0, got -5"),
        ("clip_norm", 0.0, "clip_norm must be a positive number or None, got 0.0"),
        ("grad_accum", 0, "grad_accum must be a positive int, got 0"),
        ("time_budget_min", -1, "time_budget_min must be a positive number or None, got -1"),
        ("patience", 0, "patience must be a positive int or None, got 0"),
        ("max_nonfinite", 0, "max_nonfinite must be a positive int, got 0"),
        ("checkpoint_every", 0, "checkpoint_every must be a positive int or None, got 0"),
        ("tbptt", "yes", "tbptt must be True or False, got 'yes'"),
        ("flush_denormals", 1, "flush_denormals must be True or False, got 1"),
        ("reuse_memory", "no", "reuse_memory must be True or False, got 'no'"),
        ("monitor", "", "monitor must be a metric name, got ''"),
    ],
)
def test_bad_value_is_named_with_expectation_and_what_arrived(field, value, message):
    with pytest.raises(ValueError) as err:
        TrainConfig(**{field: value})
    assert message in str(err.value)


def test_nesterov_without_sgd_momentum_is_rejected():
    with pytest.raises(ValueError, match="nesterov needs optimizer='sgd' and momentum > 0"):
        TrainConfig(optimizer="sgd", nesterov=True)
    TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True)


def test_fp16_on_cpu_is_rejected_before_training():
    with pytest.raises(ValueError, match="precision 'fp16' needs a CUDA device"):
        TrainConfig(precision="fp16", device="cpu")


def test_round_trip_through_json():
    config = TrainConfig(epochs=3, optimizer="adamw", betas=(0.8, 0.99), clip_norm=1.0)
    data = json.loads(json.dumps(config.to_dict()))  # betas come back as a list
    assert TrainConfig.from_dict(data) == config


def test_from_dict_rejects_unknown_keys_by_name():
    with pytest.raises(ValueError, match="unknown TrainConfig keys: 'lrr'; known keys are epochs"):
        TrainConfig.from_dict({"lrr": 0.1})


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().lr = 0.5  # type: ignore[misc]
