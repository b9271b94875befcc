"""recur's compiled minGRU / minLSTM loop: equal to the readable scan, gradcheck-ed backward."""

import pytest
import torch

from recur import Recurrent, kernels
from recur.cells.minimal import scan_loop
from recur.layers import run_cell, run_compiled_cell

pytestmark = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain to build "
                                "recur's CPU kernels (minGRU/minLSTM fall back to the readable scan)")

CELLS = ["mingru", "minlstm"]


def outputs_and_gradients(run, cell, x, h0, mask):
    out, (h,) = run(cell, x, (h0,), mask)
    weights = torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)
    loss = (out * weights).sum() + (h ** 2).sum()
    return out.detach(), h.detach(), torch.autograd.grad(loss, [x, h0, *cell.parameters()])


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_and_gradients_equal_the_readable_scan(name, masked, bias):
    torch.manual_seed(0)
    cell = Recurrent(name, 3, 4, bias=bias).double().cells[0]
    x = torch.randn(5, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    mask = (torch.arange(6) < torch.tensor([6, 3, 1, 6, 5]).unsqueeze(1)) if masked else None
    out_a, h_a, g_a = outputs_and_gradients(run_cell, cell, x, h0, mask)
    out_b, h_b, g_b = outputs_and_gradients(run_compiled_cell, cell, x, h0, mask)
    torch.testing.assert_close(out_b, out_a, atol=1e-14, rtol=1e-12)
    torch.testing.assert_close(h_b, h_a, atol=1e-14, rtol=1e-12)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", CELLS)
def test_equals_the_per_step_recurrence(name):
    """The cell's own one-step ``recur`` (the lecture equations), unrolled by hand."""
    torch.manual_seed(1)
    cell = Recurrent(name, 3, 4).double().cells[0]
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    h0 = torch.randn(2, 4, dtype=torch.float64)
    state, stepped = (h0,), []
    for x_t in cell.input_transform(x).unbind(1):                  # (B, G·H)
        state = cell.recur(x_t, state)
        stepped.append(state[0])
    compiled, _ = run_compiled_cell(cell, x, (h0,), None)
    torch.testing.assert_close(compiled, torch.stack(stepped, 1), atol=1e-14, rtol=1e-12)


@pytest.mark.parametrize("name", CELLS)
def test_gradcheck(name):
    torch.manual_seed(2)
    G = 2 if name == "mingru" else 3
    xw = torch.randn(2, 5, G * 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 5, [True, True, False, True, False]])
    bias = torch.randn(G * 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda xw, h0: kernels.minimal(name, xw, h0, mask), (xw, h0))
    assert torch.autograd.gradcheck(lambda xw, h0: kernels.minimal(name, xw, h0, None), (xw, h0))
    assert torch.autograd.gradcheck(lambda xw, h0, b: kernels.minimal(name, xw, h0, mask, b),
                                    (xw, h0, bias))


@pytest.mark.parametrize("name", CELLS)
def test_broadcast_and_strided_gradients_are_read_in_place(name):
    """The gradient of out.sum() (stride 0 over B, T, H) and a transposed one give the
    same result as their contiguous copies."""
    torch.manual_seed(8)
    G = 2 if name == "mingru" else 3
    xw = torch.randn(2, 9, G * 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64)
    out = kernels.minimal(name, xw, h0, None)
    for grad in (torch.ones(()).expand(2, 9, 4), torch.randn(4, 9, 2).permute(2, 1, 0),
                 torch.randn(9, 2, 4).transpose(0, 1)):
        grad = grad.double()
        (strided,) = torch.autograd.grad(out, xw, grad, retain_graph=True)
        (dense,) = torch.autograd.grad(out, xw, grad.contiguous(), retain_graph=True)
        torch.testing.assert_close(strided, dense, atol=0, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_bias_inside_the_loop_equals_the_bias_in_the_gemm(name, threads):
    """The layer adds b_ih inside the compiled loop; the readable path adds it in the GEMM.
    With 3 threads the 5 batch rows run in 3 uneven blocks (per-block bias-gradient sums)."""
    torch.manual_seed(4)
    cell = Recurrent(name, 3, 4).double().cells[0]
    x = torch.randn(5, 6, 3, dtype=torch.float64)
    h0 = torch.randn(5, 4, dtype=torch.float64)
    mask = torch.ones(5, 6, dtype=torch.bool)
    mask[1, 4:] = mask[3, 2:] = False
    results = []
    for run in (run_cell, run_compiled_cell):
        out, _ = run(cell, x, (h0,), mask)
        loss = (out * torch.linspace(-1, 1, 4, dtype=torch.float64)).sum()
        results.append((out.detach(), torch.autograd.grad(loss, list(cell.parameters()))))
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_b, out_a, atol=1e-12, rtol=1e-10)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("name", CELLS)
def test_inputs_are_left_untouched(name):
    G = 2 if name == "mingru" else 3
    xw = torch.randn(1, 7, G * 4, requires_grad=True)
    h0 = torch.randn(1, 4)
    xw0, h00 = xw.detach().clone(), h0.clone()
    grad = torch.ones(1, 7, 4)
    kernels.minimal(name, xw, h0, None).backward(grad)
    assert torch.equal(xw.detach(), xw0) and torch.equal(h0, h00)
    assert torch.equal(grad, torch.ones(1, 7, 4))


@pytest.mark.parametrize("name", CELLS)
def test_stable_and_equal_at_t16384(name):
    torch.manual_seed(3)
    G = 2 if name == "mingru" else 3
    xw = torch.randn(2, 16_384, G * 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.zeros(2, 3, dtype=torch.float64)
    hs = kernels.minimal(name, xw, h0, None)
    hs[:, -1].sum().backward()
    assert torch.isfinite(hs).all() and torch.isfinite(xw.grad).all()
    cell = Recurrent(name, 1, 3).double().cells[0]
    a, b = cell.coefficients(xw.detach())                          # (B, T, H) each
    torch.testing.assert_close(hs.detach(), scan_loop(a, b, h0), atol=1e-12, rtol=1e-10)
    # the last step reaches the loss directly: ∂L/∂h̃_T = z_T (minGRU) or i'_T (minLSTM)
    gates = cell.gates(xw.detach()[:, -1])
    direct = gates["z"] if name == "mingru" else gates["i"]
    torch.testing.assert_close(xw.grad[:, -1, (G - 1) * 3:], direct)


def test_float32_is_close_to_float64():
    torch.manual_seed(4)
    xw = torch.randn(3, 200, 3 * 8, dtype=torch.float64)
    h0 = torch.randn(3, 8, dtype=torch.float64)
    exact = kernels.minimal("minlstm", xw, h0, None)
    single = kernels.minimal("minlstm", xw.float(), h0.float(), None)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), exact, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", CELLS)
def test_layer_runs_the_compiled_loop_and_equals_the_readable_layer(name):
    """Stacked, bidirectional, padded: every path through ``Recurrent`` agrees."""
    torch.manual_seed(5)
    fast = Recurrent(name, 3, 4, num_layers=2, bidirectional=True).double()
    readable = Recurrent(name, 3, 4, num_layers=2, bidirectional=True, fused=False).double()
    readable.load_state_dict(fast.state_dict())
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    lengths = torch.tensor([7, 2, 5, 7])
    assert "compiled on CPU" in repr(fast) and fast._use_compiled(x)
    assert not readable._use_compiled(x)
    results = []
    for layer in (fast, readable):
        out = layer(x, lengths=lengths)
        loss = out.outputs.pow(2).sum() + out.state[0].sum()
        results.append((out.outputs, out.state[0], torch.autograd.grad(loss, list(layer.parameters()))))
    (out_a, h_a, g_a), (out_b, h_b, g_b) = results
    torch.testing.assert_close(out_a, out_b, atol=1e-13, rtol=1e-11)
    torch.testing.assert_close(h_a, h_b, atol=1e-13, rtol=1e-11)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-9)
    with torch.no_grad():                      # inference uses the compiled loop too
        torch.testing.assert_close(fast(x, lengths=lengths).outputs, out_b.detach(),
                                   atol=1e-13, rtol=1e-11)


def test_parallel_scan_and_switch_off_keep_the_readable_path(monkeypatch):
    x = torch.zeros(1, 2, 2)
    assert not Recurrent("mingru", 2, 3, scan="parallel")._use_compiled(x)
    assert not Recurrent("mingru", 2, 3)._use_compiled(x.to(torch.bfloat16))
    layer = Recurrent("minlstm", 2, 3)
    assert layer._use_compiled(x)
    monkeypatch.setenv("RECUR_CPU_KERNELS", "0")
    assert not layer._use_compiled(x)


def test_switched_off_layer_gives_the_same_training_step(monkeypatch):
    torch.manual_seed(6)
    layer = Recurrent("mingru", 3, 5).double()
    x = torch.randn(2, 11, 3, dtype=torch.float64)
    grads = []
    for switch in ("1", "0"):
        monkeypatch.setenv("RECUR_CPU_KERNELS", switch)
        layer.zero_grad()
        layer(x).outputs.sum().backward()
        grads.append(layer.cells[0].weight_ih.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-12, rtol=1e-10)
