"""recur's compiled LSTM loop (bf16 training on CPU): equal to the readable LSTM in float64,
gradcheck-ed BPTT, close to fp32 under bf16 autocast, switched off by RECUR_CPU_KERNELS=0."""

import pytest
import torch

from recur import Recurrent, kernels
from recur.layers import run_cell, run_compiled_lstm

pytestmark = pytest.mark.skipif(not kernels.lstm_available(), reason="no C++ toolchain to build "
                                "recur's LSTM kernel (layers fall back to torch's oneDNN LSTM)")


def _loss(out, h, c):
    weights = torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)
    return (out * weights).sum() + (h ** 2).sum() + (c.to(out.dtype) ** 3).sum()


@pytest.mark.parametrize("options", [{}, {"single_bias": True}, {"bias": False},
                                     {"forget_bias": 1.0}])
def test_forward_and_gradients_equal_the_readable_lstm(options, threads):
    torch.manual_seed(0)
    cell = Recurrent("lstm", 3, 4, **options).double().cells[0]
    x = torch.randn(5, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    results = []
    for run in (run_cell, run_compiled_lstm):
        out, (h, c) = run(cell, x, (h0, c0), None)
        grads = torch.autograd.grad(_loss(out, h, c), [x, h0, c0, *cell.parameters()])
        results.append((out.detach(), h.detach(), c.detach(), grads))
    (*values_a, g_a), (*values_b, g_b) = results
    for a, b in zip(values_a, values_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-10)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-8)


def test_gradcheck():
    torch.manual_seed(1)
    H = 3
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, H, dtype=torch.float64, requires_grad=True)
    w_ih = torch.randn(4 * H, 2, dtype=torch.float64, requires_grad=True)
    w_hh = (0.5 * torch.randn(4 * H, H, dtype=torch.float64)).requires_grad_()
    b = torch.randn(4 * H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kernels.lstm, (x, h0, c0, w_ih, w_hh, b))


def _bf16_step(layer, x, kernels_on, monkeypatch):
    monkeypatch.setenv("RECUR_CPU_KERNELS", "1" if kernels_on else "0")
    layer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = layer(x)
    out.float().sum().backward()
    return out.float(), [p.grad.clone() for p in layer.parameters()]


def test_bf16_autocast_takes_the_compiled_loop_and_stays_close_to_fp32(monkeypatch):
    """bf16 keeps 8 bits of mantissa (relative rounding 2⁻⁸ ≈ 0.4%): outputs within 0.05 and
    gradients within 5% of their largest entry, as oneDNN's own bf16 LSTM."""
    torch.manual_seed(2)
    layer = Recurrent("lstm", 16, 32, 2)
    x = torch.randn(4, 20, 16)
    layer.zero_grad()
    out32, _ = layer(x)
    out32.sum().backward()
    grads32 = [p.grad.clone() for p in layer.parameters()]

    out, grads = _bf16_step(layer, x, True, monkeypatch)
    assert out.grad_fn is not None
    out_onednn, grads_onednn = _bf16_step(layer, x, False, monkeypatch)
    for candidate, candidate_grads in ((out, grads), (out_onednn, grads_onednn)):
        torch.testing.assert_close(candidate, out32, atol=0.05, rtol=0)
        for g, g32 in zip(candidate_grads, grads32, strict=True):
            torch.testing.assert_close(g, g32, atol=0.05 * g32.abs().max().item(), rtol=0)


def test_dispatch_only_for_bf16_training_on_full_length_batches(monkeypatch):
    layer = Recurrent("lstm", 2, 3)
    x = torch.zeros(1, 4, 2)
    assert not layer._use_compiled_lstm(x)                     # fp32 keeps oneDNN
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer._use_compiled_lstm(x)
        with torch.no_grad():                                  # inference keeps oneDNN
            assert not layer._use_compiled_lstm(x)
        assert not Recurrent("lstm", 2, 3, fused=False)._use_compiled_lstm(x)
        assert not Recurrent("gru", 2, 3)._use_compiled_lstm(x)
        monkeypatch.setenv("RECUR_CPU_KERNELS", "0")
        assert not layer._use_compiled_lstm(x)


def test_more_than_one_thread_keeps_onednn_unless_forced(monkeypatch, threads):
    layer = Recurrent("lstm", 2, 3)
    x = torch.zeros(1, 4, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer._use_compiled_lstm(x) == (threads == 1)
        monkeypatch.setenv("RECUR_CPU_KERNELS", "always")
        assert layer._use_compiled_lstm(x)


def test_switched_off_falls_back_to_onednn(monkeypatch):
    monkeypatch.setenv("RECUR_CPU_KERNELS", "0")
    layer = Recurrent("lstm", 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(torch.randn(2, 5, 2))
    assert type(out.grad_fn).__name__ != "_LSTMFunctionBackward"
    assert out.dtype == torch.bfloat16


def test_bidirectional_stack_with_lengths_under_bf16_matches_fp32():
    """Bidirectional goes through the compiled loop per direction; with lengths the layer
    keeps its fused/readable split (the loop has no padding mask)."""
    torch.manual_seed(3)
    layer = Recurrent("lstm", 8, 16, 2, bidirectional=True)
    x = torch.randn(3, 7, 8)
    ref, (h_ref, c_ref) = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = layer(x)
        padded, _ = layer(x, lengths=torch.tensor([7, 4, 2]))
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0)
    torch.testing.assert_close(h.float(), h_ref, atol=0.05, rtol=0)
    torch.testing.assert_close(c.float(), c_ref, atol=0.05, rtol=0)
    assert padded.shape == ref.shape
