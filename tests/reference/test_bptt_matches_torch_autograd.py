"""The NumPy BPTT against torch autograd in float64, three ways:

1. the same equations written here in torch ops (every cell and form, the readout too);
2. torch.nn.RNN / GRU / LSTM with the weights copied in: proves the names and gate order;
3. recur.cells with the weights copied in (skipped only while recur.cells is missing).

All use the loss L = Σ outputs ⊙ R + Σ h_T ⊙ R_h (+ Σ c_T ⊙ R_c) from conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

TOLERANCE = 1e-9


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


# --- 1. the lecture equations in torch ops, one function per cell --------------------------


def torch_elman(p, xs, h0, activation):
    f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation]
    h, outputs = h0, []
    for t in range(xs.shape[1]):
        h = f(xs[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
        outputs.append(h @ p["V"].T + p["c"] if "V" in p else h)
    return torch.stack(outputs, dim=1), h, None


def torch_gated(p, xs, h0):
    h, outputs = h0, []
    for t in range(xs.shape[1]):
        net = xs[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        net_g, net_n = net.chunk(2, dim=1)
        g, n = torch.sigmoid(net_g), torch.tanh(net_n)
        h = (1 - g) * h + g * n
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, None


def torch_gru(p, xs, h0, reset):
    W_ir, W_iz, W_in = p["weight_ih"].chunk(3)
    W_hr, W_hz, W_hn = p["weight_hh"].chunk(3)
    b_ir, b_iz, b_in = p["bias_ih"].chunk(3)
    b_hr, b_hz, b_hn = p["bias_hh"].chunk(3)
    h, outputs = h0, []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        if reset == "after":
            n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
        else:
            n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        h = (1 - z) * n + z * h
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, None


def torch_lstm(p, xs, h0, c0):
    h, c, outputs = h0, c0, []
    for t in range(xs.shape[1]):
        net = xs[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        net_i, net_f, net_g, net_o = net.chunk(4, dim=1)
        i, f, g, o = net_i.sigmoid(), net_f.sigmoid(), net_g.tanh(), net_o.sigmoid()
        c = f * c + i * g
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c


TORCH_FORWARD = {"elman": torch_elman, "gated": torch_gated, "gru": torch_gru, "lstm": torch_lstm}


def leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def torch_loss(problem, outputs, h_last, c_last):
    w = {name: torch.tensor(value) for name, value in problem.weights.items()}
    loss = (outputs * w["outputs"]).sum() + (h_last * w["h_last"]).sum()
    if c_last is not None:
        loss = loss + (c_last * w["c_last"]).sum()
    return loss


def test_bptt_matches_autograd_of_the_same_equations(problem):
    params = {name: leaf(value) for name, value in problem.params.items()}
    inputs = {name: leaf(value) for name, value in problem.inputs.items()}
    run = TORCH_FORWARD[problem.case.module.__name__.rsplit(".", 1)[-1]]
    outputs, h_last, c_last = run(params, **inputs, **problem.case.options)
    torch_loss(problem, outputs, h_last, c_last).backward()

    numpy_outputs, _ = problem.forward()
    np.testing.assert_allclose(numpy_outputs, outputs.detach().numpy(), rtol=1e-12, atol=1e-14)
    grads = problem.grads()
    for name, tensor in {**params, **inputs}.items():
        assert relative_error(grads[name], tensor.grad.numpy()) < TOLERANCE, name


# --- 2. torch.nn's own modules: the names and gate order are torch's ------------------------

TORCH_NN = {
    "elman-tanh": lambda: torch.nn.RNN(3, 5, nonlinearity="tanh", batch_first=True),
    "elman-relu": lambda: torch.nn.RNN(3, 5, nonlinearity="relu", batch_first=True),
    "gru-after": lambda: torch.nn.GRU(3, 5, batch_first=True),
    "lstm": lambda: torch.nn.LSTM(3, 5, batch_first=True),
}


@pytest.mark.parametrize("name", sorted(TORCH_NN))
def test_weights_copy_into_torch_nn_with_the_same_gate_order(name, make_problem):
    problem = make_problem(name)
    module = TORCH_NN[name]().double()
    with torch.no_grad():
        for key, value in problem.params.items():
            getattr(module, f"{key}_l0").copy_(torch.from_numpy(value))
    inputs = {key: leaf(value) for key, value in problem.inputs.items()}
    state = inputs["h0"][None]  # (1, B, H): torch.nn's (L * directions, B, H)
    if "c0" in inputs:
        state = (state, inputs["c0"][None])
    outputs, final = module(inputs["xs"], state)
    h_last, c_last = final if isinstance(final, tuple) else (final, None)
    torch_loss(problem, outputs, h_last[0], None if c_last is None else c_last[0]).backward()

    numpy_outputs, _ = problem.forward()
    np.testing.assert_allclose(numpy_outputs, outputs.detach().numpy(), rtol=1e-12, atol=1e-14)
    grads = problem.grads()
    for key in problem.params:
        got = getattr(module, f"{key}_l0").grad.numpy()
        assert relative_error(grads[key], got) < TOLERANCE, key
    for key, tensor in inputs.items():
        assert relative_error(grads[key], tensor.grad.numpy()) < TOLERANCE, key


# --- 3. recur.cells with copied weights -----------------------------------------------------


# the Elman readout is an nn.Linear in recur.cells: V is its weight, c its bias
RECUR_CELL_NAMES = {"V": "V.weight", "c": "V.bias"}


def make_recur_cell(cells, case, params):
    """The recur.cells module for ``case``, float64, with the NumPy ``params`` copied in."""
    hidden_size, input_size = params["weight_hh"].shape[1], params["weight_ih"].shape[1]
    kind = case.module.__name__.rsplit(".", 1)[-1]
    if kind == "elman":
        output_size = params["V"].shape[0] if case.readout else None
        activation = case.options["activation"]
        cell = cells.Elman(input_size, hidden_size, activation=activation, output_size=output_size)
    elif kind == "gated":
        cell = cells.GatedRNN(input_size, hidden_size)
    elif kind == "gru":
        cell = cells.GRU(input_size, hidden_size, reset=case.options["reset"])
    else:
        cell = cells.LSTM(input_size, hidden_size)
    cell = cell.double()
    with torch.no_grad():
        for key, value in params.items():
            cell.get_parameter(RECUR_CELL_NAMES.get(key, key)).copy_(torch.from_numpy(value))
    return cell


def test_bptt_matches_recur_cells_with_copied_weights(problem):
    cells = pytest.importorskip(
        "recur.cells", reason="recur.cells is not written yet; the oracle cannot check it"
    )
    cell = make_recur_cell(cells, problem.case, problem.params)
    inputs = {key: leaf(value) for key, value in problem.inputs.items()}
    state = (inputs["h0"], inputs["c0"]) if "c0" in inputs else (inputs["h0"],)
    outputs = []
    for t in range(inputs["xs"].shape[1]):
        state = cell(inputs["xs"][:, t], state)  # a tuple of (B, H): (h,) or (h, c)
        outputs.append(cell.readout(state[0]) if problem.case.readout else state[0])
    outputs = torch.stack(outputs, dim=1)  # (B, T, H) or (B, T, O)
    c_last = state[1] if len(state) > 1 else None
    torch_loss(problem, outputs, state[0], c_last).backward()

    numpy_outputs, _ = problem.forward()
    np.testing.assert_allclose(numpy_outputs, outputs.detach().numpy(), rtol=1e-12, atol=1e-14)
    grads = problem.grads()
    for key in problem.params:
        got = cell.get_parameter(RECUR_CELL_NAMES.get(key, key)).grad.numpy()
        assert relative_error(grads[key], got) < TOLERANCE, f"recur.cells {key}"
    for key, tensor in inputs.items():
        assert relative_error(grads[key], tensor.grad.numpy()) < TOLERANCE, f"recur.cells {key}"
