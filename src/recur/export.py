"""ONNX export of saved models, and running them with onnxruntime.

    recur export DIR --format onnx --out model.onnx
    recur predict DIR "text" ... --backend onnx [--onnx FILE]

What is exported (``export_onnx`` dispatches on the checkpoint's task):

* ``sentiment`` — the whole classifier: tokens (B, T) int64 + lengths (B,) int64 →
  probabilities (B, C) float32, with dynamic B and T. Tokenizing stays in Python (the
  tokenizer files sit next to the weights).
* the language model's single step and the tagger's emission network: the signatures are
  below (``export_language_model_step``, ``export_tagger_emissions``) and raise until those
  tasks land; the recurrent layers go through the same ``OnnxRecurrent``.

Why ONNX's own LSTM / GRU / RNN operators. The fused torch path splits each batch at its
shortest length (a data-dependent Python int) and the readable path is a Python loop over
t; traced, both become graphs with a fixed T. ONNX's recurrent operators take
``sequence_lens`` and carry each sequence's state past its own end unchanged — the
contract ``Recurrent`` keeps — so the graph has dynamic B and T and padding never changes
a result. ``OnnxRecurrent`` holds copies of a ``Recurrent``'s weights in ONNX's gate
order and emits one such operator per layer through ``torch.onnx.ops.symbolic_multi_out``;
everything around it (embedding, pooling, the head) is exported by torch's exporter from
the same modules the model uses. Cells without an ONNX operator (``gated``, ``mingru``,
``minlstm``) are refused with the list of those that export.

Parity with torch (max abs difference < 1e-4 on random and real inputs) is checked with
onnxruntime in tests/test_export.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from recur.cells.elman import Elman
from recur.cells.gru import GRU
from recur.cells.lstm import LSTM
from recur.layers import Recurrent
from recur.models.pooling import pool
from recur.tasks.sentiment import SentimentModel

FORMATS = ("onnx",)
OPSET = 18
EXPORTABLE_CELLS = "lstm, gru (reset after or before), elman with tanh / relu / sigmoid"

# torch keeps the gates as (i, f, g, o) for the LSTM and (r, z, n) for the GRU;
# ONNX as (i, o, f, c) and (z, r, h). These index the torch blocks in ONNX order.
_ONNX_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


class ExportError(ValueError):
    """A model that cannot be exported as asked (its cell, its task, the output path)."""


def _onnx_op(cell: nn.Module) -> tuple[str, dict[str, Any]]:
    """The ONNX operator computing ``cell`` and its attributes (per direction)."""
    if type(cell) is LSTM:
        return "LSTM", {}
    if type(cell) is GRU:
        return "GRU", {"linear_before_reset": int(cell.reset == "after")}
    if type(cell) is Elman:
        return "RNN", {"activations": [cell.activation.capitalize()]}
    raise ExportError(f"cannot export a {type(cell).__name__} cell to ONNX: its recurrence has "
                      f"no ONNX operator; cells that export: {EXPORTABLE_CELLS}")


def _onnx_gates(weight: Tensor, op: str, hidden_size: int) -> Tensor:
    """Reorder the gate blocks of a (G·H, ...) weight or (G·H,) bias from torch's to ONNX's."""
    blocks = weight.split(hidden_size, dim=0)
    return torch.cat([blocks[g] for g in _ONNX_GATE_ORDER[op]], dim=0)


class OnnxRecurrent(nn.Module):
    """Export-only twin of a ``Recurrent``: one ONNX LSTM / GRU / RNN operator per layer.

    Holds copies of the weights (as buffers, in ONNX's gate order), so the source layer is
    left untouched. In eager mode (outside ``torch.onnx.export``) it runs the source
    ``Recurrent``'s readable path, so the twin can be checked and used like the original.

    forward(x (B, T, D), lengths (B,) int64, state: one (L·dirs, B, H) per state name or
    None) -> ``(outputs (B, T, dirs·H), state)`` exactly as ``Recurrent.forward``, zero at
    padded positions.
    """

    def __init__(self, layer: Recurrent) -> None:
        super().__init__()
        self.source = layer
        self.op, self.attrs = _onnx_op(layer.cells[0])
        if "activations" in self.attrs:
            self.attrs = {"activations": self.attrs["activations"] * layer.num_directions}
        self.num_layers, self.dirs, self.H = layer.num_layers, layer.num_directions, layer.hidden_size
        for index in range(layer.num_layers):
            cells = layer.cells[index * self.dirs:(index + 1) * self.dirs]
            W = torch.stack([_onnx_gates(c.weight_ih, self.op, self.H) for c in cells])
            R = torch.stack([_onnx_gates(c.weight_hh, self.op, self.H) for c in cells])
            biases = []
            for c in cells:
                b_ih = c.bias_ih if c.bias_ih is not None else torch.zeros(c.weight_ih.shape[0])
                b_hh = c.bias_hh if c.bias_hh is not None else torch.zeros_like(b_ih)
                biases.append(torch.cat([_onnx_gates(b_ih, self.op, self.H),
                                         _onnx_gates(b_hh, self.op, self.H)]))
            self.register_buffer(f"W{index}", W.detach().clone())               # (dirs, G·H, D)
            self.register_buffer(f"R{index}", R.detach().clone())               # (dirs, G·H, H)
            self.register_buffer(f"B{index}", torch.stack(biases).detach().clone())  # (dirs, 2G·H)

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.source.state_names

    def forward(self, x: Tensor, lengths: Tensor,
                state: tuple[Tensor, ...] | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        if not torch.onnx.is_in_onnx_export():
            return tuple(self.source(x, state, lengths))  # type: ignore[return-value]
        B, T = x.shape[0], x.shape[1]
        seq_lens = lengths.to(torch.int32)                                      # (B,)
        layer_input = x.transpose(0, 1)                                         # (T, B, D)
        finals: list[list[Tensor]] = [[] for _ in self.state_names]
        direction = "bidirectional" if self.dirs == 2 else "forward"
        lstm = self.op == "LSTM"
        for index in range(self.num_layers):
            rows = slice(index * self.dirs, (index + 1) * self.dirs)
            initial = [s[rows] for s in state] if state is not None else [None] * len(self.state_names)
            inputs = [layer_input, getattr(self, f"W{index}"), getattr(self, f"R{index}"),
                      getattr(self, f"B{index}"), seq_lens, *initial]
            shapes = [[T, self.dirs, B, self.H]] + [[self.dirs, B, self.H]] * (2 if lstm else 1)
            out = torch.onnx.ops.symbolic_multi_out(
                f"::{self.op}", inputs,
                dict(self.attrs, hidden_size=self.H, direction=direction),
                dtypes=[x.dtype] * len(shapes), shapes=shapes, version=OPSET)
            y = out[0]                                                          # (T, dirs, B, H)
            layer_input = y.permute(0, 2, 1, 3).reshape(T, B, self.dirs * self.H)  # (T, B, dirs·H)
            for k, final in enumerate(out[1:]):
                finals[k].append(final)                                         # (dirs, B, H)
        outputs = layer_input.transpose(0, 1)                                   # (B, T, dirs·H)
        return outputs, tuple(torch.cat(f, dim=0) for f in finals)


class _ClassifierGraph(nn.Module):
    """A ``SequenceClassifier`` as exported: (tokens, lengths) -> probabilities (B, C)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.rnn = OnnxRecurrent(net.rnn)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        net = self.net
        x = net.embedding(tokens)                                               # (B, T, E)
        outputs, state = self.rnn(x, lengths)                                   # (B, T, dirs·H)
        final_h = state[0][-net.rnn.num_directions:]                            # (dirs, B, H)
        pooled = pool(net.config.pooling, outputs, final_h, lengths, net.attention)
        logits = net.out(net.head(pooled))                                      # (B, 1) | (B, C)
        return net.probabilities(logits.squeeze(-1) if net.binary else logits)  # (B, C)


class ExportResult(NamedTuple):
    path: Path
    inputs: list[str]
    outputs: list[str]
    max_abs_diff: float       # torch vs onnxruntime on a check batch; nan if not checked


def export_onnx(model_dir: str | os.PathLike, out: str | os.PathLike, *,
                check: bool = True) -> ExportResult:
    """Export the model saved in ``model_dir`` (checkpoint or run folder) to ``out``.

    The file is written to a temporary sibling and renamed into place, so ``out`` is never
    half-written. With ``check`` the export is run with onnxruntime on a ragged batch and
    compared with torch (the result's ``max_abs_diff``).
    """
    from recur.training.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(model_dir)
    task = checkpoint.config["task"]
    exporters = {"sentiment": export_classifier}
    if task not in exporters:
        raise ExportError(f"{model_dir} holds a {task!r} model; ONNX export exists for "
                          f"{', '.join(exporters)}")
    return exporters[task](checkpoint.model, out, check=check)


def _atomic_export(graph: nn.Module, args: tuple, out: str | os.PathLike, input_names: list[str],
                   output_names: list[str], dynamic_shapes: Any) -> Path:
    import logging
    import warnings

    out = Path(out)
    if out.suffix != ".onnx":
        raise ExportError(f"--out must be a file name ending in .onnx, got {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and similar notes
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's own deprecation chatter
            program = torch.onnx.export(graph, args, input_names=input_names,
                                        output_names=output_names, opset_version=OPSET,
                                        dynamo=True, dynamic_shapes=dynamic_shapes,
                                        external_data=False, verbose=False)
            program.save(str(tmp))
        os.replace(tmp, out)
    finally:
        exporter_log.setLevel(level)
        tmp.unlink(missing_ok=True)
    return out


def export_classifier(net: nn.Module, out: str | os.PathLike, *, check: bool = True) -> ExportResult:
    """Export a ``SequenceClassifier``: tokens (B, T) int64, lengths (B,) int64 ->
    probabilities (B, C) float32; B and T dynamic."""
    if net.config.input_features is not None:
        raise ExportError("export of classifiers over real-valued inputs (input_features) is "
                          "not supported yet; token classifiers export")
    graph = _ClassifierGraph(net.eval()).eval()
    tokens = torch.randint(1, net.config.vocab_size, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    path = _atomic_export(graph, (tokens, lengths), out, ["tokens", "lengths"], ["probabilities"],
                          {"tokens": {0: batch, 1: time}, "lengths": {0: batch}})
    diff = float("nan")
    if check:
        tokens = torch.randint(1, net.config.vocab_size, (4, 11))
        lengths = torch.tensor([11, 5, 1, 8])
        with torch.no_grad():
            expected = net.probabilities(net(tokens, lengths)).numpy()
        got = OnnxClassifier(path).probabilities(tokens.numpy(), lengths.numpy())
        diff = float(np.abs(expected - got).max())
    return ExportResult(path, ["tokens", "lengths"], ["probabilities"], diff)


def export_language_model_step(net: nn.Module, out: str | os.PathLike) -> ExportResult:
    """(planned) The language model as one step with state in and out, for streaming.

    Graph: token (B,) int64, one state input per state name (L, B, H) float32 ->
    logits (B, V) float32 and the new state, named ``state_h`` / ``state_c`` in and
    ``next_state_h`` / ``next_state_c`` out. Built from ``OnnxRecurrent`` with T = 1 and
    lengths of ones; the sampling loop (recur.generation) stays in Python.
    """
    raise ExportError("ONNX export of the language model lands with the language-model task")


def export_tagger_emissions(net: nn.Module, out: str | os.PathLike) -> ExportResult:
    """(planned) The tagger's emission network: tokens (B, T) int64 + lengths (B,) ->
    emission scores (B, T, K) float32; the CRF's Viterbi decoding stays in Python and reads
    the transition matrix from the checkpoint."""
    raise ExportError("ONNX export of the tagger lands with the tagging task")


class OnnxClassifier:
    """An exported classifier under onnxruntime: ``probabilities(tokens, lengths)``."""

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import onnxruntime
        except ImportError as err:  # pragma: no cover - the extra is missing
            raise ExportError("the onnx backend needs onnxruntime: pip install 'recur[export]'") from err
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])

    def probabilities(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """tokens (B, T) int, lengths (B,) int -> (B, C) float32."""
        feeds = {"tokens": np.asarray(tokens, dtype=np.int64),
                 "lengths": np.asarray(lengths, dtype=np.int64)}
        return self.session.run(["probabilities"], feeds)[0]



class OnnxSentimentModel(SentimentModel):
    """``SentimentModel`` whose forward pass runs the exported graph in onnxruntime.

    ``OnnxSentimentModel.load(DIR, onnx=FILE)``; without ``onnx`` the model is exported to a
    temporary file first. Tokenizing, batching and labels are the torch model's.
    """

    session: OnnxClassifier

    @classmethod
    def load(cls, path: str | os.PathLike, onnx: str | os.PathLike | None = None) -> OnnxSentimentModel:
        import tempfile

        model = super().load(path)
        if onnx is None:
            with tempfile.TemporaryDirectory(prefix="recur-onnx-") as tmp:
                exported = export_classifier(model.model, Path(tmp) / "model.onnx", check=False)
                model.session = OnnxClassifier(exported.path)
        else:
            if not Path(onnx).is_file():
                raise FileNotFoundError(f"--onnx {onnx} does not exist")
            model.session = OnnxClassifier(onnx)
        return model

    def probabilities(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return torch.from_numpy(self.session.probabilities(tokens.numpy(), lengths.numpy()))
