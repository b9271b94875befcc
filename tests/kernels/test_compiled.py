"""recur's compiled CPU loops (GRU, Elman): equal to the readable path, gradcheck-ed BPTT."""

import pytest
import torch

from recur import Recurrent, kernels
from recur.layers import run_cell, run_compiled_cell

pytestmark = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain to build "
                                "recur's CPU kernels (the layers fall back to torch's)")

CASES = [("gru", {}), ("elman", {"activation": "tanh"}), ("elman", {"activation": "relu"}),
         ("elman", {"activation": "sigmoid"}), ("gru", {"single_bias": True}),
         ("elman", {"bias": False})]


@pytest.mark.parametrize(("cell", "options"), CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_forward_and_gradients_equal_the_readable_path(cell, options, masked):
    torch.manual_seed(0)
    layer = Recurrent(cell, 3, 4, **options).double()
    c = layer.cells[0]
    x = torch.randn(5, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    mask = (torch.arange(6) < torch.tensor([6, 3, 1, 6, 5]).unsqueeze(1)) if masked else None
    results = []
    for run in (run_cell, run_compiled_cell):
        out, (h,) = run(c, x, (h0,), mask)
        loss = (out * torch.linspace(-1, 1, 4, dtype=torch.float64)).sum() + (h ** 2).sum()
        grads = torch.autograd.grad(loss, [x, h0, *c.parameters()])
        results.append((out.detach(), h.detach(), grads))
    (out_a, h_a, g_a), (out_b, h_b, g_b) = results
    torch.testing.assert_close(out_b, out_a, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(h_b, h_a, atol=1e-12, rtol=1e-10)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("kind", ["gru", "tanh", "relu"])
def test_gradcheck(kind):
    torch.manual_seed(1)
    H = 3
    G = 3 if kind == "gru" else 1
    xw = torch.randn(2, 4, G * H, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, H, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(G * H, H, dtype=torch.float64)).requires_grad_()
    b = torch.randn(G * H, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    if kind == "gru":
        def f(xw, h0, w, b):
            return kernels.gru(xw, h0, mask, w, b)
    else:
        def f(xw, h0, w, b):
            return kernels.elman(xw, h0, mask, w, b, kind)
    assert torch.autograd.gradcheck(f, (xw, h0, w, b))


def test_layer_uses_the_compiled_loop_on_cpu_and_matches_torch():
    torch.manual_seed(2)
    torch_gru = torch.nn.GRU(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    layer = Recurrent.from_torch(torch_gru)
    assert "compiled on CPU" in repr(layer)
    x = torch.randn(4, 10, 8)
    lengths = torch.tensor([10, 7, 3, 10])
    ours = layer(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                     enforce_sorted=False)
    out, h = torch_gru(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=10)
    torch.testing.assert_close(ours.outputs, out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.state[0], h, atol=1e-5, rtol=1e-4)


def test_switch_off_with_the_environment(monkeypatch):
    layer = Recurrent("gru", 2, 3)
    monkeypatch.setenv("RECUR_CPU_KERNELS", "0")
    assert not layer._use_compiled(torch.zeros(1, 2, 2))
    monkeypatch.setenv("RECUR_CPU_KERNELS", "1")
    assert layer._use_compiled(torch.zeros(1, 2, 2))
    assert not Recurrent("gru", 2, 3, fused=False)._use_compiled(torch.zeros(1, 2, 2))
    assert not Recurrent("lstm", 2, 3)._use_compiled(torch.zeros(1, 2, 2))


def test_inference_keeps_torchs_kernel():
    layer = Recurrent("gru", 2, 3)
    with torch.no_grad():
        assert not layer._use_compiled(torch.zeros(1, 2, 2))
    layer.requires_grad_(False)
    assert not layer._use_compiled(torch.zeros(1, 2, 2))
    assert layer._use_compiled(torch.zeros(1, 2, 2, requires_grad=True))
