"""The Recurrent layer: against its cells unrolled by hand, fused vs readable, padding."""

import pytest
import torch
from torch import nn

from recur import Recurrent

B, T, D, H = 4, 6, 3, 5
LENGTHS = torch.tensor([6, 2, 4, 1])

ALL_CELLS = [
    ("elman", {}),
    ("elman", {"activation": "relu"}),
    ("elman", {"activation": "sigmoid"}),
    ("gated", {}),
    ("gru", {}),
    ("gru", {"reset": "before"}),
    ("lstm", {}),
    ("mingru", {}),
    ("minlstm", {}),
]
FUSABLE = [("elman", {}), ("elman", {"activation": "relu"}), ("gru", {}), ("lstm", {}),
           ("lstm", {"single_bias": True}), ("gru", {"bias": False})]


def ids(params):
    return [f"{c}-{'-'.join(map(str, o.values())) or 'default'}" for c, o in params]


def readable_twin(layer: Recurrent) -> Recurrent:
    """The same weights, forced onto the readable path."""
    cell = layer.cells[0]
    options = {"bias": cell.bias, "single_bias": cell.single_bias}
    if layer.cell_name == "elman":
        options["activation"] = cell.activation
    twin = Recurrent(layer.cell_name, layer.input_size, layer.hidden_size, layer.num_layers,
                     bidirectional=layer.bidirectional, fused=False, **options)
    twin.load_state_dict(layer.state_dict())
    return twin


@pytest.mark.parametrize("cell, options", ALL_CELLS, ids=ids(ALL_CELLS))
def test_layer_equals_cell_unrolled_by_hand(cell, options):
    layer = Recurrent(cell, D, H, **options)
    x = torch.randn(B, T, D)
    out, state = layer(x)
    s = layer.cells[0].initial_state(B)
    for t in range(T):
        s = layer.cells[0](x[:, t], s)
        torch.testing.assert_close(out[:, t], s[0])
    for final, expected in zip(state, s, strict=True):
        torch.testing.assert_close(final[0], expected)


@pytest.mark.parametrize("cell, options", FUSABLE, ids=ids(FUSABLE))
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_fused_path_equals_readable_path(cell, options, bidirectional, with_lengths):
    fused = Recurrent(cell, D, H, 2, bidirectional=bidirectional, **options)
    assert fused.use_fused
    readable = readable_twin(fused)
    x = torch.randn(B, T, D, requires_grad=True)
    state = tuple(s.normal_() for s in fused.initial_state(B))
    lengths = LENGTHS if with_lengths else None
    a = fused(x, state, lengths)
    b = readable(x, state, lengths)
    torch.testing.assert_close(a.outputs, b.outputs, atol=1e-6, rtol=1e-5)
    for sa, sb in zip(a.state, b.state, strict=True):
        torch.testing.assert_close(sa, sb, atol=1e-6, rtol=1e-5)
    loss_weights = torch.randn_like(a.outputs)
    grads_a = torch.autograd.grad((a.outputs * loss_weights).sum(), [x, *fused.parameters()])
    grads_b = torch.autograd.grad((b.outputs * loss_weights).sum(), [x, *readable.parameters()])
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cell, options", ALL_CELLS, ids=ids(ALL_CELLS))
@pytest.mark.parametrize("fused", ["auto", False])
def test_padded_batch_equals_unpadded_sequences(cell, options, fused):
    layer = Recurrent(cell, D, H, 2, bidirectional=True, fused=fused, **options)
    x = torch.randn(B, T, D)
    out, state = layer(x, lengths=LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        alone_out, alone_state = layer(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone_out[0], atol=1e-6, rtol=1e-5)
        assert out[b, n:].abs().sum() == 0, "padded outputs must be zero"
        for s, s_alone in zip(state, alone_state, strict=True):
            torch.testing.assert_close(s[:, b], s_alone[:, 0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("fused", ["auto", False])
def test_reverse_direction_ignores_padding(fused):
    layer = Recurrent("gru", D, H, bidirectional=True, fused=fused)
    x = torch.randn(B, T, D)
    noisy = x.clone()
    for b, n in enumerate(LENGTHS.tolist()):
        noisy[b, n:] = 1e3 * torch.randn(T - n, D)
    clean_out = layer(x, lengths=LENGTHS)
    noisy_out = layer(noisy, lengths=LENGTHS)
    torch.testing.assert_close(clean_out.outputs, noisy_out.outputs)
    torch.testing.assert_close(clean_out.state[0], noisy_out.state[0])


@pytest.mark.parametrize("fused", ["auto", False])
def test_bidirectional_final_state_layout(fused):
    layer = Recurrent("lstm", D, H, 2, bidirectional=True, fused=fused)
    x = torch.randn(B, T, D)
    out, (h, c) = layer(x)
    assert h.shape == c.shape == (4, B, H)   # (L·dirs, B, H), index layer * 2 + direction
    # top layer forward = outputs at the last step, first half of the features
    torch.testing.assert_close(h[2], out[:, -1, :H])
    # top layer reverse = outputs at the FIRST step, second half (it read t = T-1 … 0)
    torch.testing.assert_close(h[3], out[:, 0, H:])


def test_step_equals_forward():
    layer = Recurrent("lstm", D, H, 3)
    x = torch.randn(B, T, D)
    out, state = layer(x)
    s = None
    for t in range(T):
        y, s = layer.step(x[:, t], s)
        torch.testing.assert_close(y, out[:, t], atol=1e-6, rtol=1e-5)
    for a, b in zip(s, state, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_from_torch_reproduces_torch_outputs():
    torch_lstm = nn.LSTM(D, H, 2, batch_first=True, bidirectional=True)
    layer = Recurrent.from_torch(torch_lstm)
    x = torch.randn(B, T, D)
    expected, (h, c) = torch_lstm(x)
    out, state = layer(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(state[0], h)
    torch.testing.assert_close(state[1], c)
    assert layer.state_dict().keys() == readable_twin(layer).state_dict().keys()


def test_dropout_only_between_layers_and_only_in_training():
    layer = Recurrent("gru", D, H, 2, dropout=0.5, fused=False)
    x = torch.randn(B, T, D)
    layer.eval()
    torch.testing.assert_close(layer(x).outputs, layer(x).outputs)
    layer.train()
    assert not torch.allclose(layer(x).outputs, layer(x).outputs)


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm", "mingru"])
def test_gradients_finite_at_t1000(cell):
    layer = Recurrent(cell, D, 8, fused=False)
    x = torch.randn(2, 1000, D, requires_grad=True)
    layer(x).outputs[:, -1].sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_unfusable_options_take_the_readable_path():
    assert not Recurrent("gru", D, H, reset="before").use_fused
    assert not Recurrent("elman", D, H, activation="sigmoid").use_fused
    with pytest.raises(ValueError, match="fused=True needs"):
        Recurrent("gated", D, H, fused=True)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m(torch.randn(B, D)), r"x must have shape \(B, T, D\) \(3 dims\), got 2 dims"),
        (lambda m: m(torch.randn(B, T, D + 1)), r"x must have D = input_size = 3 features"),
        (lambda m: m(torch.ones(B, T, D, dtype=torch.long)), "x must be a floating-point tensor"),
        (lambda m: m(torch.randn(B, T, D), lengths=torch.tensor([7, 1, 1, 1])),
         r"lengths must be in \[1, T=6\], got values in \[1, 7\]"),
        (lambda m: m(torch.randn(B, T, D), lengths=torch.tensor([0, 1, 1, 1])),
         r"lengths must be in \[1, T=6\], got values in \[0, 1\]"),
        (lambda m: m(torch.randn(B, T, D), lengths=torch.tensor([1, 1])),
         r"lengths must have shape \(4,\), got \(2,\)"),
        (lambda m: m(torch.randn(B, T, D), lengths=torch.tensor([1.0, 1, 1, 1])),
         "lengths must be an integer tensor"),
        (lambda m: m(torch.randn(B, T, D), state=(torch.zeros(1, B, H),)),
         r"state must be a tuple \(h, c\) of 2 tensors, got 1 tensors"),
        (lambda m: m(torch.randn(B, T, D), state=(torch.zeros(1, B, H), torch.zeros(2, B, H))),
         r"state c must have shape \(L·dirs, B, H\) = \(1, 4, 5\), got \(2, 4, 5\)"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(Recurrent("lstm", D, H))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size must be a positive int, got -3"):
        Recurrent("lstm", D, -3)
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\), got 1.5"):
        Recurrent("lstm", D, H, dropout=1.5)
    with pytest.raises(ValueError, match="cell must be one of"):
        Recurrent("transformer", D, H)
    with pytest.raises(ValueError, match="step\\(\\) needs a unidirectional layer"):
        Recurrent("lstm", D, H, bidirectional=True).step(torch.randn(B, D))


@pytest.mark.parametrize("lengths", [torch.tensor([6, 6, 6, 6]), torch.tensor([6, 5, 6, 4])])
def test_fused_head_and_readable_tail_split_is_exact(lengths):
    fused = Recurrent("lstm", D, H, 2, bidirectional=True)
    readable = readable_twin(fused)
    x = torch.randn(B, T, D)
    a, b = fused(x, lengths=lengths), readable(x, lengths=lengths)
    torch.testing.assert_close(a.outputs, b.outputs, atol=1e-6, rtol=1e-5)
    for sa, sb in zip(a.state, b.state, strict=True):
        torch.testing.assert_close(sa, sb, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_packed_path_used_on_gpu_equals_readable(cell):
    # The packed route is what CUDA takes; it runs on CPU too, so check it here.
    fused = Recurrent(cell, D, H, 2, bidirectional=True)
    readable = readable_twin(fused)
    x = torch.randn(B, T, D)
    state = fused.initial_state(B)
    a = fused._forward_packed(x, state, LENGTHS)
    b = readable(x, state, LENGTHS)
    torch.testing.assert_close(a.outputs, b.outputs, atol=1e-6, rtol=1e-5)
    for sa, sb in zip(a.state, b.state, strict=True):
        torch.testing.assert_close(sa, sb, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_fused_lstm_runs_under_cpu_bf16_autocast(lengths):
    layer = Recurrent("lstm", D, H, 2)
    x = torch.randn(B, T, D)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, lengths=lengths).outputs
    reference = layer(x, lengths=lengths).outputs
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, atol=3e-2, rtol=3e-2)
    out.float().sum().backward()
    assert torch.isfinite(layer.cells[0].weight_hh.grad).all()
