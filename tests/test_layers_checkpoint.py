"""Gradient checkpointing over time (``Recurrent(checkpoint_chunk=K)``) against the plain path.

Checkpointing must change memory and time only: in float64 the outputs, final states and
the gradients of the input, the initial state and every parameter equal the plain path's,
for every path a layer can take (readable, fused, compiled), with lengths, bidirectional
and stacked, whatever K is against T.
"""

import pytest
import torch

from recur import Recurrent

B, T, D, H = 4, 7, 3, 5
LENGTHS = torch.tensor([7, 2, 5, 1])

CASES = [  # cell, options; fused="auto" picks fused / compiled where it can
    ("lstm", {}),
    ("gru", {}),
    ("gru", {"reset": "before"}),
    ("elman", {}),
    ("gated", {}),
    ("mingru", {}),
    ("minlstm", {}),
]


def twins(cell: str, options: dict, chunk: int, **layer_options) -> tuple[Recurrent, Recurrent]:
    """(plain, checkpointed) layers with the same float64 weights."""
    plain = Recurrent(cell, D, H, 2, **layer_options, **options).double()
    ckpt = Recurrent(cell, D, H, 2, checkpoint_chunk=chunk, **layer_options, **options).double()
    ckpt.load_state_dict(plain.state_dict())
    return plain, ckpt


def outputs_and_grads(layer: Recurrent, x, state, lengths):
    x = x.clone().requires_grad_(True)
    state = tuple(s.clone().requires_grad_(True) for s in state)
    out = layer(x, state, lengths)
    weights = torch.linspace(-1, 1, out.outputs.numel(), dtype=x.dtype).view_as(out.outputs)
    loss = (out.outputs * weights).sum() + sum((s * s).sum() for s in out.state)
    grads = torch.autograd.grad(loss, [x, *state, *layer.parameters()])
    return out, grads


@pytest.mark.parametrize("cell, options", CASES, ids=[f"{c}-{o}" for c, o in CASES])
@pytest.mark.parametrize("fused", ["auto", False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_checkpointed_equals_plain_in_float64(cell, options, fused, bidirectional, with_lengths):
    plain, ckpt = twins(cell, options, chunk=3, fused=fused, bidirectional=bidirectional)
    x = torch.randn(B, T, D, dtype=torch.float64)
    state = tuple(s.normal_() for s in plain.initial_state(B))
    lengths = LENGTHS if with_lengths else None
    a, grads_a = outputs_and_grads(plain, x, state, lengths)
    b, grads_b = outputs_and_grads(ckpt, x, state, lengths)
    torch.testing.assert_close(b.outputs, a.outputs, atol=1e-12, rtol=1e-10)
    for sa, sb in zip(a.state, b.state, strict=True):
        torch.testing.assert_close(sb, sa, atol=1e-12, rtol=1e-10)
    assert len(grads_a) == len(grads_b)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(gb, ga, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("chunk", [1, 2, 7, 100])
def test_chunk_size_that_does_not_divide_t_or_exceeds_it(chunk):
    plain, ckpt = twins("lstm", {}, chunk=chunk, bidirectional=True)
    x = torch.randn(B, T, D, dtype=torch.float64)
    state = plain.initial_state(B)
    a, grads_a = outputs_and_grads(plain, x, state, LENGTHS)
    b, grads_b = outputs_and_grads(ckpt, x, state, LENGTHS)
    torch.testing.assert_close(b.outputs, a.outputs, atol=1e-12, rtol=1e-10)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(gb, ga, atol=1e-12, rtol=1e-10)


def count_checkpointed_chunks(layer: Recurrent, x: torch.Tensor, **kwargs) -> int:
    """How many chunks a forward hands to torch.utils.checkpoint (non-reentrant)."""
    from recur import layers

    calls = []
    original = layers.checkpoint

    def spy(fn, *args, **options):
        calls.append(options)
        return original(fn, *args, **options)

    layers.checkpoint = spy
    try:
        layer(x, **kwargs)
    finally:
        layers.checkpoint = original
    assert all(options == {"use_reentrant": False} for options in calls)
    return len(calls)


def test_chunks_run_under_checkpoint_only_when_gradients_are_recorded():
    layer = Recurrent("gru", D, H, 2, bidirectional=True, checkpoint_chunk=3)
    x = torch.randn(B, T, D)
    # ceil(7 / 3) = 3 chunks per layer-direction, 2 layers x 2 directions
    assert count_checkpointed_chunks(layer, x) == 3 * 4
    with torch.no_grad():
        assert count_checkpointed_chunks(layer, x) == 0
    layer.requires_grad_(False)
    assert count_checkpointed_chunks(layer, x) == 0              # nothing to differentiate
    assert count_checkpointed_chunks(layer, x.requires_grad_(True)) == 3 * 4


def test_checkpointed_training_keeps_fewer_saved_tensors():
    """What backward keeps: bytes of tensors saved for backward outside the checkpoints."""
    x = torch.randn(8, 64, D)

    def saved_bytes(layer: Recurrent) -> int:
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(x)[0].sum()
        return total

    plain = Recurrent("lstm", D, H, 2, fused=False)
    ckpt = Recurrent("lstm", D, H, 2, fused=False, checkpoint_chunk=8)
    ckpt.load_state_dict(plain.state_dict())
    assert saved_bytes(ckpt) < saved_bytes(plain) / 2


def test_checkpoint_chunk_must_be_a_positive_int():
    with pytest.raises(ValueError, match="checkpoint_chunk must be a positive int, got 0"):
        Recurrent("lstm", D, H, checkpoint_chunk=0)
    with pytest.raises(ValueError, match="checkpoint_chunk must be a positive int, got 2.5"):
        Recurrent("lstm", D, H, checkpoint_chunk=2.5)
    assert "checkpoint_chunk=4" in repr(Recurrent("lstm", D, H, checkpoint_chunk=4))
