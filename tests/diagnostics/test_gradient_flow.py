"""gradient_flow: ‖∂L/∂h_t‖ and ‖∂h_t/∂h_{t-1}‖ against hand computations and the NumPy BPTT."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from recur import Recurrent
from recur.cells import CELLS
from recur.diagnostics import gradient_flow, plot_gradient_flow, state_jacobians
from recur.models.classifier import ClassifierConfig, SequenceClassifier
from recur.reference import elman as np_elman


def elman_with_recurrent_weights(scale: float, H: int = 8, D: int = 3) -> Recurrent:
    """A tanh Elman layer whose W is ``scale`` × an orthogonal matrix, biases zero."""
    layer = Recurrent("elman", D, H).double()
    cell = layer.cells[0]
    with torch.no_grad():
        nn.init.orthogonal_(cell.weight_hh)
        cell.weight_hh.mul_(scale)
        cell.bias_ih.zero_()
        cell.bias_hh.zero_()
    return layer


def test_tiny_recurrent_weights_make_gradients_vanish_geometrically():
    T = 20
    layer = elman_with_recurrent_weights(0.2)
    x = torch.randn(4, T, 3, dtype=torch.float64)
    flow = gradient_flow(layer, x)                       # L = Σ h_T
    g = flow.grad_norms
    ratios = g[:-1] / g[1:]                              # ‖∂L/∂h_{t-1}‖ / ‖∂L/∂h_t‖
    assert (ratios <= 0.2 + 1e-6).all()                  # ‖diag(f′) W‖ ≤ ‖W‖ = 0.2
    assert g[0] / g[-1] < 0.2 ** (T - 1) * 1.001          # geometric: 0.2^19 ≈ 5e-14
    assert (flow.jacobian_norms <= 0.2 + 1e-6).all()


def test_large_recurrent_weights_make_gradients_explode_in_the_linear_regime():
    T = 8
    layer = elman_with_recurrent_weights(3.0)
    x = 1e-7 * torch.randn(2, T, 3, dtype=torch.float64)  # tiny inputs: tanh′ ≈ 1 all along
    flow = gradient_flow(layer, x)
    ratios = flow.grad_norms[:-1] / flow.grad_norms[1:]
    torch.testing.assert_close(ratios, torch.full((T - 1,), 3.0, dtype=torch.float64), rtol=1e-3, atol=0)
    torch.testing.assert_close(flow.jacobian_norms, torch.full((T,), 3.0, dtype=torch.float64),
                               rtol=1e-3, atol=0)


def test_elman_jacobian_equals_diag_fprime_times_W_by_hand():
    layer = Recurrent("elman", 3, 5).double()
    cell = layer.cells[0]
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    h = layer(x).outputs.detach()                                          # (B, T, H)
    h_prev = torch.cat([torch.zeros(2, 1, 5, dtype=torch.float64), h[:, :-1]], dim=1)
    by_hand = torch.stack([torch.diag(1 - h[0, t] ** 2) @ cell.weight_hh.detach()
                           for t in range(6)])                             # (T, H, H)

    jacobians = state_jacobians(cell, cell.input_transform(x[0]).detach(), h_prev[0])
    torch.testing.assert_close(jacobians, by_hand)
    spectral = gradient_flow(layer, x).jacobian_norms
    frobenius = gradient_flow(layer, x, jacobian="frobenius").jacobian_norms
    torch.testing.assert_close(spectral, torch.linalg.matrix_norm(by_hand, ord=2))
    torch.testing.assert_close(frobenius, torch.linalg.matrix_norm(by_hand))


@pytest.mark.parametrize("activation, init", [
    ("tanh", "uniform"), ("tanh", "glorot"), ("relu", "identity"), ("sigmoid", "glorot"),
])
def test_grad_norms_equal_the_numpy_bptt_deltas(activation, init):
    """The oracle: ∂L/∂h_t = ∂ℓ/∂h_t + Wᵀ δ_{t+1}, step by step in float64 NumPy, for each
    activation and initialisation bench/gradient_flow.py compares."""
    B, T, D, H = 3, 7, 4, 6
    layer = Recurrent("elman", D, H, activation=activation, init=init).double()  # fused path
    cell = layer.cells[0]
    x = torch.randn(B, T, D, dtype=torch.float64)
    R = torch.randn(B, T, H, dtype=torch.float64)              # L = Σ outputs ⊙ R
    flow = gradient_flow(layer, x, lambda out: (out.outputs * R).sum())

    params = {name: getattr(cell, name).detach().numpy().copy()
              for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    _, cache = np_elman.forward(params, x.numpy(), activation=activation)
    d_h_next, expected = np.zeros((B, H)), np.zeros(T)
    for t in reversed(range(T)):
        d_h = R[:, t].numpy() + d_h_next                       # ∂L/∂h_t
        expected[t] = np.linalg.norm(d_h)
        d_h_next = np_elman.step_backward(d_h, cache.steps[t])["h_prev"]
    np.testing.assert_allclose(flow.grad_norms.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("cell", sorted(set(CELLS) - {"rnn"}))
def test_every_cell_matches_a_hand_unrolled_loop(cell):
    B, T, D, H = 2, 5, 3, 4
    layer = Recurrent(cell, D, H).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    flow = gradient_flow(layer, x)

    c = layer.cells[0]
    state = c.initial_state(B, dtype=torch.float64)
    states = []
    for t in range(T):
        state = c(x[:, t], state)
        states.append(state)
    loss = states[-1][0].sum()
    grads = torch.autograd.grad(loss, [s for step in states for s in step], allow_unused=True)
    k = len(c.state_names)
    for j, name in enumerate(c.state_names):
        expected = [0.0 if g is None else float(g.norm()) for g in grads[j::k]]
        torch.testing.assert_close(flow.state_grad_norms[name],
                                   torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-12)
    assert flow.jacobian_norms.shape == (T,)
    assert torch.isfinite(flow.jacobian_norms).all()


def test_lstm_jacobian_covers_h_and_c():
    layer = Recurrent("lstm", 3, 4).double()
    cell = layer.cells[0]
    x = torch.randn(1, 3, 3, dtype=torch.float64)
    xw = cell.input_transform(x[0]).detach()                               # (T, 4H)
    previous = torch.randn(3, 8, dtype=torch.float64)                      # [h; c] per step
    jacobians = state_jacobians(cell, xw, previous)
    assert jacobians.shape == (3, 8, 8)
    for t in range(3):
        def step(h, c, t=t):
            return torch.cat(cell.recur(xw[t : t + 1], (h, c)), dim=-1)[0]
        jh, jc = torch.autograd.functional.jacobian(step, (previous[t, None, :4],
                                                           previous[t, None, 4:]))
        torch.testing.assert_close(jacobians[t], torch.cat([jh[:, 0], jc[:, 0]], dim=-1))


def test_through_a_padded_bidirectional_classifier_leaves_parameter_grads_alone():
    config = ClassifierConfig(vocab_size=30, embed_dim=4, hidden_size=6, num_layers=2,
                              bidirectional=True, head_sizes=())
    model = SequenceClassifier(config).eval()
    tokens = torch.randint(1, 30, (3, 9))
    lengths = torch.tensor([5, 9, 7])                       # sequence 0 is padded after step 5
    labels = torch.tensor([0, 1, 1])

    def loss_fn(logits):
        return model.loss(logits, labels)

    with torch.no_grad():
        expected = float(loss_fn(model(tokens, lengths)))
    flow = gradient_flow(model, (tokens, lengths), loss_fn, layer=0, direction=1)
    assert math.isclose(flow.loss, expected, rel_tol=1e-5)  # the readable re-run is the same model
    assert all(p.grad is None for p in model.parameters())
    assert torch.isfinite(flow.jacobian_norms[:5]).all()
    assert torch.isnan(flow.jacobian_norms[5:]).all()       # no step there for sequence 0
    assert flow.grad_norms.shape == (9,) and (flow.grad_norms > 0).all()


def test_bad_arguments_name_themselves():
    layer = Recurrent("gru", 2, 3)
    x = torch.randn(1, 4, 2)
    with pytest.raises(ValueError, match="model must be a recur.Recurrent or contain one"):
        gradient_flow(nn.Linear(2, 2), x)
    with pytest.raises(ValueError, match="jacobian must be one of"):
        gradient_flow(layer, x, jacobian="spectrl")
    with pytest.raises(ValueError, match="layer must be an int"):
        gradient_flow(layer, x, layer=1)
    with pytest.raises(ValueError, match="direction must be"):
        gradient_flow(layer, x, direction=1)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        gradient_flow(layer, x, lambda out: out.outputs)
    two = nn.Sequential(Recurrent("gru", 2, 3), Recurrent("gru", 3, 3))
    with pytest.raises(ValueError, match="pass recurrent=NAME"):
        gradient_flow(two, x)


def test_plot_writes_a_png(tmp_path):
    x = torch.randn(2, 12, 2)
    flows = {cell: gradient_flow(Recurrent(cell, 2, 4), x) for cell in ("elman", "lstm")}
    path = plot_gradient_flow(flows, tmp_path / "plots" / "flow.png", title="at init")
    assert (tmp_path / "plots" / "flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.endswith("flow.png")
