"""Truncated BPTT: the stream layout, and gradients that stop at window edges."""

import dataclasses
from typing import NamedTuple

import pytest
import torch
from tiny_tasks import Stream, TinyLM

from recur.training import TrainConfig, Trainer, detach_state, stream_windows


def test_stream_windows_layout_matches_the_docstring_diagram():
    letters = "abcdefghijklmnopqrstuvwxy"
    ids = torch.arange(len(letters))
    windows = list(stream_windows(ids, batch_size=3, window=4))

    def text(t):
        return [" ".join(letters[i] for i in row) for row in t.tolist()]

    assert [text(x) for x, _ in windows] == [
        ["a b c d", "i j k l", "q r s t"],
        ["e f g h", "m n o p", "u v w x"],
    ]
    assert [text(y) for _, y in windows] == [
        ["b c d e", "j k l m", "r s t u"],
        ["f g h i", "n o p q", "v w x y"],
    ]


def test_stream_windows_keeps_a_short_last_window_and_checks_its_input():
    shapes = [tuple(x.shape) for x, _ in stream_windows(torch.arange(23), 2, 4)]
    assert shapes == [(2, 4), (2, 4), (2, 3)]  # 22 // 2 = 11 steps per stream
    with pytest.raises(ValueError, match="ids must be a 1-D integer tensor, got"):
        next(stream_windows(torch.zeros(3, 4, dtype=torch.long), 2, 4))
    with pytest.raises(ValueError, match="window must be a positive int, got 0"):
        next(stream_windows(torch.arange(10), 2, 0))
    with pytest.raises(ValueError, match="at least batch_size \\+ 1 = 5 tokens, got 4"):
        next(stream_windows(torch.arange(4), 4, 2))


class HC(NamedTuple):
    h: torch.Tensor
    c: torch.Tensor


@dataclasses.dataclass
class Carry:
    layers: list
    step: int


def test_detach_state_reaches_into_nested_containers():
    x = torch.ones(2, 3, requires_grad=True)
    h, c = x * 2, x * 3
    state = {"lstm": (h, c), "named": HC(h, c), "box": Carry([h, None], step=4), "n": 1}
    out = detach_state(state)
    assert out["lstm"][0].grad_fn is None and out["lstm"][1].grad_fn is None
    assert isinstance(out["named"], HC) and out["named"].c.grad_fn is None
    assert isinstance(out["box"], Carry) and out["box"].layers[0].grad_fn is None
    assert out["box"].layers[1] is None and out["box"].step == 4 and out["n"] == 1
    assert out["lstm"][0].data_ptr() == h.data_ptr()  # no copy
    assert detach_state(None) is None


def test_tbptt_detach_leaves_no_graph_past_the_window():
    torch.manual_seed(0)
    model = TinyLM()
    (x1, y1), (x2, y2) = list(stream_windows(torch.arange(40) % 5, batch_size=2, window=8))[:2]
    embedded = model.embed(x1)  # window 1's activations; does window 2's backward reach them?
    out1, state1 = model.lstm(embedded)
    state_in = detach_state(state1)
    assert all(s.grad_fn is None and not s.requires_grad for s in state_in)

    logits, _ = model(x2, state_in)
    loss2 = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y2.flatten())
    (grad,) = torch.autograd.grad(loss2, [embedded], retain_graph=True, allow_unused=True)
    assert grad is None  # no path from window 2's loss back into window 1

    logits, _ = model(x2, state1)  # without detach_state the graph spans both windows
    loss2 = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y2.flatten())
    (grad,) = torch.autograd.grad(loss2, [embedded], allow_unused=True)
    assert grad is not None and grad.abs().sum() > 0


def test_trainer_carries_detached_state_between_windows_and_resets_it_each_epoch(tmp_path):
    task = Stream(record_states=True)
    config = TrainConfig(epochs=2, tbptt=True, lr=0.01, quiet=True, device="cpu")
    Trainer(task, config, tmp_path / "run").fit()
    windows = len(list(task.train_batches(0)))
    train_states = task.seen_states[:windows]  # then the validation pass, then epoch 1
    assert train_states[0] is None  # a stream starts from the zero state
    for state in train_states[1:]:
        h, c = state
        assert h.grad_fn is None and c.grad_fn is None and h.abs().sum() > 0
    epoch1_start = task.seen_states[windows + len(list(task.valid_batches()))]
    assert epoch1_start is None


def test_tbptt_language_model_learns_the_pattern(tmp_path):
    task = Stream()
    config = TrainConfig(epochs=6, tbptt=True, lr=0.02, clip_norm=1.0, quiet=True, device="cpu")
    result = Trainer(task, config, tmp_path / "run").fit()
    # a uniform guess over 5 symbols costs ln 5 = 1.61 nats; the pattern is 90% predictable
    assert result.valid_metrics["loss"] < 0.9
