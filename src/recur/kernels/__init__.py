"""Compiled CPU time loops for the GRU, the Elman RNN, minGRU and minLSTM, with
hand-written BPTT.

torch.nn.GRU and nn.RNN on CPU take a generic path that records autograd nodes for every
small op of every step (≈ 13% of sgemm at H = 64; PERF-NOTES.md). ``recurrent_cpu.cpp``
runs the loop over time in C++ — one GEMM plus in-place elementwise ops per step, no
autograd — and its backward pass is the BPTT derivation written out (``docs/equations.md``),
so a training step is a few GEMMs and buffers. Layers use it when gradients are needed
(training); inference runs torch's kernels, which are as fast without autograd.

``minimal_cpu.cpp`` does the same for minGRU / minLSTM (``recur.cells.minimal``): after the
one input GEMM, the gates, the candidate and the scan h_t = a_t ⊙ h_{t-1} + b_t run as one
σ pass and one loop over time, and the backward pass as one reverse loop, instead of about
ten whole-sequence elementwise ops and a Python loop of T steps. Layers use it on CPU
with and without gradients (torch has no kernel for these cells).

The extension is compiled on first use with ``torch.utils.cpp_extension.load`` (ninja and a
C++ compiler; about a minute, cached under ``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/torch_extensions``). Where that fails, or with ``RECUR_CPU_KERNELS=0``, recur
warns once and uses torch's kernels instead: the numbers are the same, only slower.

    from recur.kernels import available, gru, elman, minimal
    hs, h_T = gru(xw, h0, mask, w_hh, b_hh)      # xw (B, T, 3H) = x W_ihᵀ + b_ih
    hs = minimal("mingru", xw, h0, mask, b_ih)    # xw (B, T, 2H) = x W_ihᵀ

Tested equal to the readable path (``cell.recur`` step by step) in float64, with
``torch.autograd.gradcheck`` on the backward pass.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

ACTIVATIONS = {"tanh": 0, "relu": 1, "sigmoid": 2}
MINIMAL_KINDS = {"mingru": 0, "minlstm": 1}

_lock = threading.Lock()
_module: ModuleType | None = None
_failed: str | None = None


def enabled() -> bool:
    """False when ``RECUR_CPU_KERNELS=0`` switches the compiled kernels off."""
    return os.environ.get("RECUR_CPU_KERNELS", "1") != "0"


def forced() -> bool:
    """True when ``RECUR_CPU_KERNELS=always`` asks for the compiled kernels even where recur
    measured torch's kernel to be faster (the bf16 LSTM with more than one thread)."""
    return os.environ.get("RECUR_CPU_KERNELS") == "always"


def _build(name: str, sources: list[str], what: str, instead: str
           ) -> tuple[ModuleType | None, str | None]:
    """Compile (or load the cached build of) extension ``name``: (module, None), or
    (None, reason) with a one-time warning that torch's ``instead`` is used."""
    try:
        from torch.utils.cpp_extension import load as load_extension

        # a cached build loads in a second; say so only when it really compiles
        notice = threading.Timer(3.0, print, args=(
            f"recur: compiling the CPU {what} (once; about a minute)...",),
            kwargs={"file": sys.stderr, "flush": True})
        notice.start()
        try:
            # torch's build cache hashes the sources only: add the shared headers' hash
            headers = hashlib.sha256(b"".join(
                path.read_bytes() for path in sorted(Path(__file__).parent.glob("*.h"))))
            flags = ["-O3", f"-DRECUR_HEADERS_SHA256={headers.hexdigest()[:16]}"]
            return load_extension(name=name, sources=sources, extra_cflags=flags,
                                  verbose=False), None
        finally:
            notice.cancel()
    except Exception as error:  # no compiler, no ninja, no headers: fall back
        failed = f"{type(error).__name__}: {str(error).strip().splitlines()[-1:]}"
        warnings.warn(f"recur's compiled CPU {what} could not be built ({failed}); using "
                      f"torch's {instead} instead (same results, slower)", RuntimeWarning,
                      stacklevel=4)
        return None, failed


def load() -> ModuleType | None:
    """The compiled extension (built on first call), or None if it cannot be built."""
    global _module, _failed
    if _module is not None or _failed is not None:
        return _module
    with _lock:
        if _module is None and _failed is None:
            here = Path(__file__).parent
            _module, _failed = _build(
                "recur_recurrent_cpu", [str(here / "recurrent_cpu.cpp"),
                                        str(here / "minimal_cpu.cpp")],
                "kernels for GRU, Elman and minimal layers", "GRU/RNN kernels")
    return _module


def available() -> bool:
    """True when the compiled kernels are enabled and build (builds them if needed)."""
    return enabled() and load() is not None


def _time_major_mask(mask: Tensor | None, like: Tensor) -> Tensor:
    if mask is None:
        return like.new_empty(0)
    return mask.t().unsqueeze(-1).to(like.dtype).contiguous()              # (T, B, 1)


def _bias(b_hh: Tensor | None, like: Tensor) -> Tensor:
    return b_hh if b_hh is not None else like.new_empty(0)


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, h0, mask, w_hh, b_hh):                            # xw (T, B, 3H)
        hs, saved = load().gru_forward(xw, h0, mask, w_hh, b_hh)
        ctx.save_for_backward(h0, hs, saved, mask, w_hh)
        ctx.has_bias = b_hh.numel() > 0
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        h0, hs, saved, mask, w_hh = ctx.saved_tensors
        grad_xw, grad_h0, grad_w, grad_b = load().gru_backward(
            grad_hs.contiguous(), torch.zeros_like(h0), h0, hs, saved, mask, w_hh, ctx.has_bias)
        return grad_xw, grad_h0, None, grad_w, grad_b if ctx.has_bias else None


class _ElmanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, h0, mask, w_hh, b_hh, activation):                # xw (T, B, H)
        hs = load().elman_forward(xw, h0, mask, w_hh, b_hh, activation)
        ctx.save_for_backward(h0, hs, mask, w_hh)
        ctx.activation, ctx.has_bias = activation, b_hh.numel() > 0
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        h0, hs, mask, w_hh = ctx.saved_tensors
        grad_xw, grad_h0, grad_w, grad_b = load().elman_backward(
            grad_hs.contiguous(), torch.zeros_like(h0), h0, hs, mask, w_hh, ctx.activation,
            ctx.has_bias)
        return grad_xw, grad_h0, None, grad_w, grad_b if ctx.has_bias else None, None


def _unit_inner(grad: Tensor) -> Tensor:
    """``grad`` with unit stride over its last dimension, as the kernels read it. Broadcast
    dimensions (stride 0) stay broadcast: the gradient of ``out.sum()`` is one row, not a
    (B, T, H) copy."""
    if grad.stride(-1) == 1 or grad.size(-1) == 1:
        return grad
    varying = tuple(slice(0, 1) if stride == 0 else slice(None) for stride in grad.stride()[:-1])
    return grad[varying].contiguous().expand(grad.shape)


class _MinimalFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, h0, mask, bias, kind):                            # xw (B, T, G·H)
        hs, gates, slope = load().minimal_forward(xw, h0, mask, bias, kind)
        ctx.save_for_backward(mask, gates, slope)
        ctx.kind, ctx.has_bias = kind, bias.numel() > 0
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):
        mask, gates, slope = ctx.saved_tensors
        grad_xw, grad_h0, grad_bias = load().minimal_backward(
            _unit_inner(grad_hs), mask, gates, slope, ctx.kind, ctx.has_bias)
        return grad_xw, grad_h0, None, grad_bias if ctx.has_bias else None, None


def minimal(cell: str, xw: Tensor, h0: Tensor, mask: Tensor | None,
            bias: Tensor | None = None) -> Tensor:
    """minGRU or minLSTM (``recur.cells.minimal``) over a sequence: gates, candidate, scan.

    Args:
        cell: ``"mingru"`` (xw rows z, h̃) or ``"minlstm"`` (rows f, i, h̃).
        xw: (B, T, G·H) = x W_ihᵀ, without the bias.
        h0: (B, H), the same dtype (float32 or float64).
        mask: (B, T) bool, False at padded steps (the state is carried), or None.
        bias: (G·H,) = b_ih, added inside the loop (cheaper than in the GEMM), or None.

    Returns:
        (B, T, H): h_1 … h_T.
    """
    return _MinimalFunction.apply(xw.contiguous(), h0.contiguous(), _keep(mask, xw),
                                  _bias(bias, xw), MINIMAL_KINDS[cell])


def _keep(mask: Tensor | None, like: Tensor) -> Tensor:
    """The kernels' mask: (B, T) uint8, 1 at real steps, or an empty tensor for none."""
    return like.new_empty(0, dtype=torch.uint8) if mask is None \
        else mask.to(torch.uint8).contiguous()


def gru(xw: Tensor, h0: Tensor, mask: Tensor | None, w_hh: Tensor, b_hh: Tensor | None
        ) -> tuple[Tensor, Tensor]:
    """GRU (reset after the matmul) over a sequence.

    Args:
        xw: (B, T, 3H) = x W_ihᵀ + b_ih, gates r, z, n.
        h0: (B, H).
        mask: (B, T) bool, False at padded steps (the state is carried), or None.
        w_hh: (3H, H); b_hh: (3H,) or None.

    Returns:
        (outputs (B, T, H), final h (B, H)) — the final state is the one at each sequence's
        last real step.
    """
    hs = _GRUFunction.apply(xw.transpose(0, 1).contiguous(), h0.contiguous(),
                            _time_major_mask(mask, xw), w_hh, _bias(b_hh, xw))
    return hs.transpose(0, 1), hs[-1]


def elman(xw: Tensor, h0: Tensor, mask: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
          activation: str) -> tuple[Tensor, Tensor]:
    """Elman RNN ``h_t = f(xw_t + W_hh h_{t-1} + b_hh)`` over a sequence; as ``gru``."""
    hs = _ElmanFunction.apply(xw.transpose(0, 1).contiguous(), h0.contiguous(),
                              _time_major_mask(mask, xw), w_hh, _bias(b_hh, xw),
                              ACTIVATIONS[activation])
    return hs.transpose(0, 1), hs[-1]


# -- LSTM for mixed precision (its own extension, recur_lstm_cpu) ------------------------
#
# Under torch.autocast("cpu", torch.bfloat16) torch's LSTM runs oneDNN, whose bf16 backward
# costs about 3x its forward. ``lstm_cpu.cpp`` runs the loop with every GEMM in bf16 (AMX)
# and the gate math and cell state in fp32; layers use it for bf16 training on CPU with one
# torch thread (with more, oneDNN measured faster)
# (docs/benchmarks.md, "bf16 vs fp32"). It also takes float32/float64, which is how it is
# tested equal to the readable LSTM.

_lstm_module: ModuleType | None = None
_lstm_failed: str | None = None


def load_lstm() -> ModuleType | None:
    """The compiled LSTM extension (built on first call), or None if it cannot be built."""
    global _lstm_module, _lstm_failed
    if _lstm_module is not None or _lstm_failed is not None:
        return _lstm_module
    with _lock:
        if _lstm_module is None and _lstm_failed is None:
            _lstm_module, _lstm_failed = _build(
                "recur_lstm_cpu", [str(Path(__file__).with_name("lstm_cpu.cpp"))],
                "kernel for bf16 LSTM training", "LSTM kernel")
    return _lstm_module


def lstm_available() -> bool:
    """True when the compiled kernels are enabled and the LSTM one builds."""
    return enabled() and load_lstm() is not None


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias):                     # x (T, B, D)
        hs, cs, tcs, gates = load_lstm().lstm_forward(x, h0, c0, w_ih, w_hh, bias)
        ctx.save_for_backward(x, h0, c0, hs, cs, tcs, gates, w_ih, w_hh)
        ctx.has_bias = bias.numel() > 0
        return hs, cs[-1]

    @staticmethod
    def backward(ctx, grad_hs, grad_cT):
        x, h0, c0, hs, cs, tcs, gates, w_ih, w_hh = ctx.saved_tensors
        grads = load_lstm().lstm_backward(
            grad_hs.to(hs.dtype).contiguous(), grad_cT.to(cs.dtype).contiguous(), x, h0, c0,
            hs, cs, tcs, gates, w_ih, w_hh, ctx.has_bias)
        grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_bias = grads
        return grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_bias if ctx.has_bias else None


def lstm(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor | None
         ) -> tuple[Tensor, Tensor, Tensor]:
    """LSTM over a full-length sequence; every GEMM in bf16 under CPU autocast (else in x's
    dtype), gate math and cell state in fp32 (fp64 for fp64 inputs).

    Args:
        x: (B, T, D).
        h0, c0: (B, H).
        w_ih: (4H, D); w_hh: (4H, H), gates i, f, g, o.
        bias: (4H,) = b_ih + b_hh, or None.

    Returns:
        (outputs (B, T, H), final h (B, H)) in the GEMM dtype (bfloat16 under autocast),
        final c (B, H) in float32 (float64 for float64 inputs).
    """
    dtype = x.dtype
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    with torch.autocast(x.device.type, enabled=False):
        hs, c_T = _LSTMFunction.apply(
            x.to(dtype).transpose(0, 1).contiguous(), h0.to(dtype).contiguous(),
            c0.to(acc).contiguous(), w_ih.to(dtype).contiguous(), w_hh.to(dtype).contiguous(),
            bias.to(acc) if bias is not None else x.new_empty(0, dtype=acc))
    return hs.transpose(0, 1), hs[-1], c_T
