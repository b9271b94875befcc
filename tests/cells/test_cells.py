"""recur's cells against torch.nn's cells with copied weights, and their input checks."""

import pytest
import torch
from torch import nn

from recur.cells import GRU, LSTM, Elman, GatedRNN, MinGRU, MinLSTM, make_cell, scan

B, D, H, T = 3, 5, 7, 4


def copy_params(source: nn.Module, target: nn.Module) -> None:
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(target, name).copy_(getattr(source, name))


def unroll(cell, xs, state):
    for x in xs.unbind(1):
        state = cell(x, state)
    return state


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_elman_matches_torch_rnncell(activation):
    ours, theirs = Elman(D, H, activation=activation), nn.RNNCell(D, H, nonlinearity=activation)
    copy_params(ours, theirs)
    xs, h = torch.randn(B, T, D), torch.randn(B, H)
    (h_ours,) = unroll(ours, xs, (h,))
    h_theirs = h
    for x in xs.unbind(1):
        h_theirs = theirs(x, h_theirs)
    torch.testing.assert_close(h_ours, h_theirs, atol=1e-6, rtol=1e-6)


def test_elman_sigmoid_follows_its_equation():
    cell = Elman(D, H, activation="sigmoid")
    x, h = torch.randn(B, D), torch.randn(B, H)
    expected = torch.sigmoid(x @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias_ih + cell.bias_hh)
    torch.testing.assert_close(cell(x, (h,))[0], expected)


def test_gru_reset_after_matches_torch_grucell():
    ours, theirs = GRU(D, H, reset="after"), nn.GRUCell(D, H)
    copy_params(ours, theirs)
    xs, h = torch.randn(B, T, D), torch.randn(B, H)
    (h_ours,) = unroll(ours, xs, (h,))
    for x in xs.unbind(1):
        h = theirs(x, h)
    torch.testing.assert_close(h_ours, h, atol=1e-6, rtol=1e-6)


def test_gru_reset_before_is_cho_2014_not_cudnn():
    cell = GRU(D, H, reset="before")
    x, h = torch.randn(B, D), torch.randn(B, H)
    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    expected = (1 - z) * n + z * h
    torch.testing.assert_close(cell(x, (h,))[0], expected)
    after = GRU(D, H, reset="after")
    copy_params(cell, after)
    assert not torch.allclose(after(x, (h,))[0], expected), "the two GRU forms must differ"


def test_lstm_matches_torch_lstmcell():
    ours, theirs = LSTM(D, H), nn.LSTMCell(D, H)
    copy_params(ours, theirs)
    xs, h, c = torch.randn(B, T, D), torch.randn(B, H), torch.randn(B, H)
    h_ours, c_ours = unroll(ours, xs, (h, c))
    for x in xs.unbind(1):
        h, c = theirs(x, (h, c))
    torch.testing.assert_close(h_ours, h, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(c_ours, c, atol=1e-6, rtol=1e-6)


def test_gated_rnn_follows_lecture_equations():
    cell = GatedRNN(D, H)
    x, h = torch.randn(B, D), torch.randn(B, H)
    hx = torch.cat([h, x], dim=1)                                   # [h_{t-1}, x_t]
    W = torch.cat([cell.weight_hh, cell.weight_ih], dim=1)          # W·[h, x]
    b = cell.bias_ih + cell.bias_hh
    pre_g, pre_n = (hx @ W.T + b).chunk(2, dim=1)
    g = torch.sigmoid(pre_g)
    expected = (1 - g) * h + g * torch.tanh(pre_n)
    torch.testing.assert_close(cell(x, (h,))[0], expected)


def test_golden_values_with_constant_weights():
    # All weights 0.1, biases 0: x = 1 (D=2), h0 = 0 -> pre-activation 0.2 for every unit.
    cell = Elman(2, 3)
    lstm = LSTM(2, 3)
    for module in (cell, lstm):
        for p in module.parameters():
            nn.init.constant_(p, 0.0)
        nn.init.constant_(module.weight_ih, 0.1)
    x = torch.ones(1, 2)
    (h,) = cell(x)
    torch.testing.assert_close(h, torch.full((1, 3), torch.tanh(torch.tensor(0.2)).item()))
    h, c = lstm(x)
    s, g = torch.sigmoid(torch.tensor(0.2)), torch.tanh(torch.tensor(0.2))
    torch.testing.assert_close(c, torch.full((1, 3), (s * g).item()))
    torch.testing.assert_close(h, torch.full((1, 3), (s * torch.tanh(s * g)).item()))


def test_single_bias_reproduces_keras_parameter_count():
    lstm = LSTM(128, 64, single_bias=True)
    assert sum(p.numel() for p in lstm.parameters()) == 49_408
    assert lstm.bias_hh is None


def test_forget_bias_sets_total_forget_gate_bias():
    cell = LSTM(D, H, forget_bias=1.0)
    total = cell.bias_ih + cell.bias_hh
    torch.testing.assert_close(total[H : 2 * H], torch.ones(H), rtol=0, atol=0)


def test_identity_init_is_irnn():
    cell = Elman(D, H, activation="relu", init="identity")
    torch.testing.assert_close(cell.weight_hh, torch.eye(H))
    assert cell.weight_ih.abs().max() < 0.01
    assert cell.bias_ih.abs().sum() == 0


def test_glorot_init_gives_orthogonal_recurrent_blocks():
    cell = LSTM(D, H, init="glorot")
    for block in cell.weight_hh.chunk(4):
        torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)


def test_elman_readout_is_affine():
    cell = Elman(D, H, output_size=2)
    h = torch.randn(B, H)
    torch.testing.assert_close(cell.readout(h), h @ cell.V.weight.T + cell.V.bias)
    with pytest.raises(ValueError, match="output_size"):
        Elman(D, H).readout(h)


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_minimal_cell_step_equals_scan(cls):
    cell = cls(D, H)
    xs, h0 = torch.randn(B, T, D), torch.randn(B, H)
    states, state = [], (h0,)
    for x in xs.unbind(1):
        state = cell(x, state)
        states.append(state[0])
    stepped = torch.stack(states, 1)
    for method in ("sequential", "parallel"):
        cell.scan_method = method
        torch.testing.assert_close(cell.scan(cell.input_transform(xs), h0), stepped)


def test_mingru_follows_paper_equations():
    cell = MinGRU(D, H)
    x, h = torch.randn(B, D), torch.randn(B, H)
    W_z, W_h = cell.weight_ih.chunk(2)
    b_z, b_h = cell.bias_ih.chunk(2)
    z = torch.sigmoid(x @ W_z.T + b_z)
    expected = (1 - z) * h + z * (x @ W_h.T + b_h)
    torch.testing.assert_close(cell(x, (h,))[0], expected)
    assert cell.weight_hh is None


def test_parallel_scan_is_exact_for_long_sequences():
    a = torch.rand(2, 1000, 4, dtype=torch.float64)
    b = torch.randn(2, 1000, 4, dtype=torch.float64)
    h0 = torch.randn(2, 4, dtype=torch.float64)
    torch.testing.assert_close(scan(a, b, h0, "parallel"), scan(a, b, h0, "sequential"))


def test_sequential_scan_is_stable_at_t16384():
    a = torch.rand(2, 16_384, 3)
    b = torch.randn(2, 16_384, 3, requires_grad=True)
    hs = scan(a, b, torch.zeros(2, 3), "sequential")
    hs[:, -1].sum().backward()
    assert torch.isfinite(hs).all() and torch.isfinite(b.grad).all()
    assert b.grad[:, -1].eq(1).all()             # the last step reaches the loss directly


def test_make_cell_by_name_and_unknown_name():
    assert isinstance(make_cell("lstm", D, H), LSTM)
    with pytest.raises(ValueError, match="cell must be one of .* got 'lsmt'"):
        make_cell("lsmt", D, H)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden_size": -3}, "hidden_size must be a positive int, got -3"),
        ({"hidden_size": 0}, "hidden_size must be a positive int, got 0"),
        ({"input_size": 2.5}, "input_size must be a positive int, got 2.5"),
        ({"activation": "softplus"}, "activation must be one of tanh, relu, sigmoid, got 'softplus'"),
        ({"init": "xavier"}, "init must be one of uniform, glorot, identity, got 'xavier'"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, match):
    args = {"input_size": D, "hidden_size": H} | kwargs
    with pytest.raises(ValueError, match=match):
        Elman(**args)


def test_bad_step_input_names_the_argument():
    cell = LSTM(D, H)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 5\), got \(3, 4\)"):
        cell(torch.randn(3, 4))
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        cell(torch.ones(3, D, dtype=torch.long))
    with pytest.raises(ValueError, match=r"state must be a tuple \(h, c\)"):
        cell(torch.randn(3, D), (torch.zeros(3, H),))
    with pytest.raises(ValueError, match=r"state c must have shape \(3, 7\), got \(3, 6\)"):
        cell(torch.randn(3, D), (torch.zeros(3, H), torch.zeros(3, 6)))
    with pytest.raises(ValueError, match="reset must be one of after, before"):
        GRU(D, H, reset="middle")
