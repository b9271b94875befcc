"""ONNX export of saved models, and running them with onnxruntime.

    recur export DIR [--format onnx] [--out FILE]     (default FILE: model.onnx next to the weights)
    recur predict DIR "text" ... --backend onnx [--onnx FILE]
    recur generate DIR --prompt TEXT --backend onnx [--onnx FILE]
    recur tag DIR --input FILE --backend onnx [--onnx FILE]

What is exported (``export_onnx`` dispatches on the checkpoint's task, ``EXPORTABLE_TASKS``):

* ``sentiment`` — the whole classifier: tokens (B, T) int64 + lengths (B,) int64 →
  probabilities (B, C) float32, dynamic B and T. Tokenizing stays in Python (the
  tokenizer files sit next to the weights).
* ``language_model`` — one step with the state in and out, for streaming generation:
  tokens (B,) int64 + ``state_h`` (L, B, H) [+ ``state_c`` (L, B, H) for an LSTM] →
  logits (B, V) + ``next_state_h`` [+ ``next_state_c``], dynamic B. The decoding loop
  stays in Python: ``OnnxLanguageModel.step`` is a ``recur.generation`` step function
  backed by onnxruntime, so greedy, sampling and beam search are the one implementation.
* ``tagger`` — the emission network: words, casing (B, T), lengths (B,), the batch's
  distinct words' characters chars (U, W) + char_lengths (U,) and char_index (B, T) →
  emissions (B, T, K), dynamic B, T, U and W. The CRF's Viterbi (``recur.crf.CRF.decode``)
  runs in Python on those emissions with the checkpoint's transition scores.

How the recurrence is exported. The fused torch path splits each batch at its shortest
length (a data-dependent Python int) and the readable path is a Python loop over t;
traced, both become graphs with a fixed T. ONNX's recurrent operators take
``sequence_lens`` and carry each sequence's state past its own end unchanged — the
contract ``Recurrent`` keeps — so the graph has dynamic B and T and padding never changes
a result. ``onnx_twin(net)`` copies the model with every ``Recurrent`` replaced by an
``OnnxRecurrent`` (same call signature) that holds copies of its weights in ONNX's gate
order and emits one such operator per layer through ``torch.onnx.ops.symbolic_multi_out``;
everything around it is the model's own ``forward``, exported by torch's exporter. So no
``Recurrent`` runs while exporting: neither torch's fused kernels nor recur's compiled CPU
loops (``recur.kernels``) are traced (tests/test_export_tasks.py checks). Cells without an
ONNX operator (``gated``, ``mingru``, ``minlstm``) are refused with the list of those that
export.

Every file ``export_onnx`` writes carries the SHA-256 of the weights it came from
(metadata ``recur.weights_sha256``); the onnx backends refuse a file made from other
weights than the checkpoint's. Parity with torch (max abs difference < 1e-4 on random and
real inputs) is checked with onnxruntime in tests/test_export.py (classifier) and
tests/test_export_tasks.py (language model, tagger).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from recur.cells.elman import Elman
from recur.cells.gru import GRU
from recur.cells.lstm import LSTM
from recur.layers import Recurrent, RecurrentOutput
from recur.tasks.language_model import TrainedLanguageModel
from recur.tasks.sentiment import SentimentModel
from recur.tasks.tagger import NERModel

FORMATS = ("onnx",)
OPSET = 18
ONNX_FILE = "model.onnx"
"""The file ``recur export DIR`` writes next to the weights, where the onnx backends look."""
EXPORTABLE_CELLS = "lstm, gru (reset after or before), elman with tanh / relu / sigmoid"
EXPORTABLE_TASKS = ("sentiment", "language_model", "tagger")
WEIGHTS_DIGEST = "recur.weights_sha256"

# torch keeps the gates as (i, f, g, o) for the LSTM and (r, z, n) for the GRU;
# ONNX as (i, o, f, c) and (z, r, h). These index the torch blocks in ONNX order.
_ONNX_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


class ExportError(ValueError):
    """A model that cannot be exported as asked (its cell, its task, the output path), or
    an ONNX file that does not fit the model it is used with."""


def _onnx_op(cell: nn.Module) -> tuple[str, dict[str, Any]]:
    """The ONNX operator computing ``cell`` and its attributes (per direction)."""
    kind = type(cell)
    if kind is LSTM:
        return "LSTM", {}
    if kind is GRU:
        return "GRU", {"linear_before_reset": int(cell.reset == "after")}
    if kind is Elman:
        return "RNN", {"activations": [cell.activation.capitalize()]}
    raise ExportError(f"cannot export a {kind.__name__} cell to ONNX: its recurrence has "
                      f"no ONNX operator; cells that export: {EXPORTABLE_CELLS}")


def _onnx_gates(weight: Tensor, op: str, hidden_size: int) -> Tensor:
    """Reorder the gate blocks of a (G·H, ...) weight or (G·H,) bias from torch's to ONNX's."""
    blocks = weight.split(hidden_size, dim=0)
    return torch.cat([blocks[g] for g in _ONNX_GATE_ORDER[op]], dim=0)


class OnnxRecurrent(nn.Module):
    """Export-only twin of a ``Recurrent``: one ONNX LSTM / GRU / RNN operator per layer.

    Holds copies of the weights (as buffers, in ONNX's gate order), so the source layer is
    left untouched. In eager mode (outside ``torch.onnx.export``) it runs the source
    ``Recurrent``, so the twin can be checked and used like the original.

    forward(x (B, T, D), state: one (L·dirs, B, H) per state name or None, lengths (B,)
    int64 or None) -> ``RecurrentOutput(outputs (B, T, dirs·H), state)`` exactly as
    ``Recurrent.forward``, zero at padded positions. Dropout between layers is left out:
    exports are of models in eval mode.
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

    # what models read off their Recurrent (state layout, output width)
    state_names = property(lambda self: self.source.state_names)
    num_directions = property(lambda self: self.source.num_directions)
    hidden_size = property(lambda self: self.source.hidden_size)
    output_size = property(lambda self: self.source.output_size)

    def forward(self, x: Tensor, state: Sequence[Tensor] | None = None,
                lengths: Tensor | None = None) -> RecurrentOutput:
        if not torch.onnx.is_in_onnx_export():
            return self.source(x, state, lengths)
        B, T = x.shape[0], x.shape[1]
        seq_lens = lengths.to(torch.int32) if lengths is not None else None     # (B,)
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
        return RecurrentOutput(outputs, tuple(torch.cat(f, dim=0) for f in finals))


def onnx_twin(net: nn.Module) -> nn.Module:
    """A copy of ``net`` (eval mode) with every ``Recurrent`` replaced by its ``OnnxRecurrent``.

    The model's own ``forward`` then exports with dynamic batch and length; ``net`` is not
    changed. Raises ExportError naming the cell if a Recurrent's cell has no ONNX operator.
    """
    twin = copy.deepcopy(net).eval()
    for name, module in list(twin.named_modules()):
        if isinstance(module, Recurrent):
            parent, _, attr = name.rpartition(".")
            setattr(twin.get_submodule(parent), attr, OnnxRecurrent(module))
    return twin


# -- the graphs -----------------------------------------------------------------------------


class _ClassifierGraph(nn.Module):
    """A ``SequenceClassifier`` as exported: (tokens, lengths) -> probabilities (B, C)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = onnx_twin(net)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.net.probabilities(self.net(tokens, lengths))                # (B, C)


class _LanguageModelStepGraph(nn.Module):
    """A ``LanguageModel`` as one step: (tokens (B,), state) -> (logits (B, V), next state).

    ``state`` has one (L, B, H) tensor per state name. The step is the model's own forward
    over a length-1 window (``LanguageModel.step`` without its log_softmax)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = onnx_twin(net)

    def forward(self, tokens: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        logits, next_state = self.net(tokens.unsqueeze(1), state)               # (B, 1, V)
        return logits[:, 0], next_state                                         # (B, V)


TAGGER_INPUTS = ("words", "casing", "lengths", "chars", "char_lengths", "char_index")


class _TaggerEmissionsGraph(nn.Module):
    """A ``SequenceTagger``'s emission network: ``TAGGER_INPUTS`` -> emissions (B, T, K)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = onnx_twin(net)

    def forward(self, words: Tensor, casing: Tensor, lengths: Tensor, chars: Tensor,
                char_lengths: Tensor, char_index: Tensor) -> Tensor:
        from recur.models.tagger import TaggerInputs

        batch = TaggerInputs(words, casing, lengths, chars, char_lengths, char_index)
        return self.net(batch)                                                  # (B, T, K)


# -- exporting ------------------------------------------------------------------------------


class ExportResult(NamedTuple):
    path: Path
    inputs: list[str]
    outputs: list[str]
    max_abs_diff: float       # torch vs onnxruntime on check inputs; nan if not checked


def default_onnx_path(model_dir: str | os.PathLike) -> Path:
    """Where ``recur export DIR`` writes by default and the onnx backends look: next to the
    weights (a run folder's ``best/model.onnx``)."""
    from recur.training.checkpoint import resolve

    return resolve(model_dir) / ONNX_FILE


def weights_digest(checkpoint_folder: str | os.PathLike) -> str:
    """SHA-256 (hex) of a checkpoint's ``model.safetensors``."""
    from recur.training.checkpoint import WEIGHTS

    digest = hashlib.sha256()
    with open(Path(checkpoint_folder) / WEIGHTS, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_onnx(model_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
                check: bool = True) -> ExportResult:
    """Export the model saved in ``model_dir`` (checkpoint or run folder) to ``out``
    (default: ``model.onnx`` next to the weights).

    The file is written to a temporary sibling and renamed into place, so ``out`` is never
    half-written. With ``check`` the export is run with onnxruntime on check inputs and
    compared with torch (the result's ``max_abs_diff``).
    """
    from recur.training.checkpoint import load_checkpoint, read_config

    task = read_config(model_dir)["task"]
    exporters = {"sentiment": export_classifier, "language_model": export_language_model_step,
                 "tagger": export_tagger_emissions}
    assert set(exporters) == set(EXPORTABLE_TASKS)
    if task not in exporters:
        raise ExportError(f"{model_dir} holds a {task!r} model; ONNX export exists for the "
                          f"tasks {', '.join(EXPORTABLE_TASKS)} (sentiment classifier, "
                          f"language model, tagger)")
    checkpoint = load_checkpoint(model_dir)
    out = checkpoint.folder / ONNX_FILE if out is None else out
    metadata = {WEIGHTS_DIGEST: weights_digest(checkpoint.folder), "recur.task": task}
    return exporters[task](checkpoint.model, out, check=check, metadata=metadata)


def _atomic_export(graph: nn.Module, args: tuple, out: str | os.PathLike, input_names: list[str],
                   output_names: list[str], dynamic_shapes: Any,
                   metadata: dict[str, str] | None = None) -> Path:
    import logging
    import warnings

    import onnx

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
            model = program.model_proto
        import recur

        for key, value in {"recur.version": recur.__version__, **(metadata or {})}.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(tmp))
        os.replace(tmp, out)
    finally:
        exporter_log.setLevel(level)
        tmp.unlink(missing_ok=True)
    return out


def export_classifier(net: nn.Module, out: str | os.PathLike, *, check: bool = True,
                      metadata: dict[str, str] | None = None) -> ExportResult:
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
                          {"tokens": {0: batch, 1: time}, "lengths": {0: batch}}, metadata)
    diff = float("nan")
    if check:
        tokens = torch.randint(1, net.config.vocab_size, (4, 11))
        lengths = torch.tensor([11, 5, 1, 8])
        with torch.no_grad():
            expected = net.probabilities(net(tokens, lengths)).numpy()
        got = OnnxClassifier(path).probabilities(tokens.numpy(), lengths.numpy())
        diff = float(np.abs(expected - got).max())
    return ExportResult(path, ["tokens", "lengths"], ["probabilities"], diff)


def export_language_model_step(net: nn.Module, out: str | os.PathLike, *, check: bool = True,
                               metadata: dict[str, str] | None = None) -> ExportResult:
    """Export a ``LanguageModel`` as one step with its state in and out, for streaming.

    Graph: ``tokens`` (B,) int64 and one ``state_<name>`` (L, B, H) float32 per state name
    (``state_h``, and ``state_c`` for an LSTM) -> ``logits`` (B, V) float32 and
    ``next_state_<name>``; B dynamic. The check runs three steps from a random state on a
    batch of 4 and compares logits and states with ``LanguageModel.forward``.
    """
    net = net.eval()
    c = net.config
    names = net.state_names
    graph = _LanguageModelStepGraph(net).eval()
    tokens = torch.randint(0, c.vocab_size, (3,))
    state = tuple(torch.zeros(c.num_layers, 3, c.hidden_size) for _ in names)
    batch = torch.export.Dim("batch")
    inputs = ["tokens", *(f"state_{n}" for n in names)]
    outputs = ["logits", *(f"next_state_{n}" for n in names)]
    path = _atomic_export(graph, (tokens, state), out, inputs, outputs,
                          ({0: batch}, tuple({1: batch} for _ in names)), metadata)
    diff = float("nan")
    if check:
        session = OnnxLanguageModelStep(path)
        generator = torch.Generator().manual_seed(0)
        state = tuple(torch.randn(c.num_layers, 4, c.hidden_size, generator=generator) * 0.5
                      for _ in names)
        onnx_state, diff = state, 0.0
        for _ in range(3):
            tokens = torch.randint(0, c.vocab_size, (4,), generator=generator)
            with torch.no_grad():
                expected, state = net(tokens.unsqueeze(1), state)
            got, onnx_state = session.run(tokens, onnx_state)
            diff = max(diff, float((expected[:, 0] - got).abs().max()),
                       *(float((s - o).abs().max()) for s, o in zip(state, onnx_state, strict=True)))
    return ExportResult(path, inputs, outputs, diff)


def export_tagger_emissions(net: nn.Module, out: str | os.PathLike, *, check: bool = True,
                            metadata: dict[str, str] | None = None) -> ExportResult:
    """Export a ``SequenceTagger``'s emission network: ``TAGGER_INPUTS`` (words, casing
    (B, T); lengths (B,); chars (U, W); char_lengths (U,); char_index (B, T), all int64)
    -> ``emissions`` (B, T, K) float32; B, T, U and W dynamic. Viterbi over the CRF's
    transitions (or the softmax head's argmax) stays in Python."""
    net = net.eval()
    graph = _TaggerEmissionsGraph(net).eval()
    example = _tagger_check_batch(net, [5, 3, 2], seed=0)
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    words, chars = torch.export.Dim("words"), torch.export.Dim("chars")
    dynamic = ({0: batch, 1: time}, {0: batch, 1: time}, {0: batch},
               {0: words, 1: chars}, {0: words}, {0: batch, 1: time})
    path = _atomic_export(graph, tuple(example)[:len(TAGGER_INPUTS)], out, list(TAGGER_INPUTS), ["emissions"],
                          dynamic, metadata)
    diff = float("nan")
    if check:
        session = OnnxTaggerEmissions(path)
        batch_ = _tagger_check_batch(net, [9, 1, 4, 6], seed=1)
        with torch.no_grad():
            expected = net(batch_)
        mask = net.mask(batch_).unsqueeze(-1)
        diff = float(((expected - session.emissions(batch_)) * mask).abs().max())
    return ExportResult(path, list(TAGGER_INPUTS), ["emissions"], diff)


def _tagger_check_batch(net: nn.Module, lengths: list[int], seed: int):
    """A random right-padded ``TaggerInputs`` with the given sentence lengths."""
    from recur.models.tagger import NUM_CASINGS, TaggerInputs

    c = net.config
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)                # (B, T)
    words = torch.randint(1, c.num_words, (B, T), generator=g) * mask           # (B, T)
    casing = torch.randint(1, NUM_CASINGS, (B, T), generator=g) * mask          # (B, T)
    U = int(mask.sum())
    char_lengths = torch.randint(1, 8, (U,), generator=g)                       # (U,)
    chars = torch.randint(2, c.num_chars, (U, int(char_lengths.max())), generator=g)
    chars = chars * (torch.arange(chars.shape[1]) < char_lengths.unsqueeze(1))  # (U, W)
    char_index = torch.zeros(B, T, dtype=torch.long)
    char_index[mask] = torch.arange(U)
    return TaggerInputs(words, casing, torch.tensor(lengths), chars, char_lengths, char_index)


# -- running exported graphs with onnxruntime -----------------------------------------------


class OnnxSession:
    """An exported graph under onnxruntime (CPU, torch's thread count).

    ``expects`` is the graph's input names (a prefix is enough); a file with other inputs is
    refused naming what it holds, e.g. a classifier's file given to ``recur generate``."""

    kind = "graph"
    expects: tuple[str, ...] = ()

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import onnxruntime
        except ImportError as err:  # pragma: no cover - the extra is missing
            raise ExportError("the onnx backend needs onnxruntime: pip install 'recur[export]'") from err
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail / InvalidGraph types
            raise ExportError(f"{path} is not an ONNX file onnxruntime can load: "
                              f"{str(err).splitlines()[0][:300]}") from None
        self.path = Path(path)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if tuple(self.inputs[:len(self.expects)]) != self.expects:
            raise ExportError(f"{path} is not a {self.kind} graph: its inputs are "
                              f"{', '.join(self.inputs)}, expected {', '.join(self.expects)}")


class OnnxClassifier(OnnxSession):
    """An exported classifier under onnxruntime: ``probabilities(tokens, lengths)``."""

    kind = "classifier"
    expects = ("tokens", "lengths")

    def probabilities(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """tokens (B, T) int, lengths (B,) int -> (B, C) float32."""
        feeds = {"tokens": np.asarray(tokens, dtype=np.int64),
                 "lengths": np.asarray(lengths, dtype=np.int64)}
        return self.session.run(["probabilities"], feeds)[0]


class OnnxLanguageModelStep(OnnxSession):
    """An exported language-model step under onnxruntime.

    ``run(tokens (B,), state) -> (logits (B, V), state)`` and, as a ``recur.generation``
    step, ``step(tokens, state) -> (log_probs (B, V), state)`` with ``state`` a tuple of
    (L, B, H) torch tensors (None: zeros), so ``select_rows(1)`` reorders it for beams."""

    kind = "language-model step"
    expects = ("tokens", "state_h")

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self.state_inputs = self.inputs[1:]
        self.layers, self.hidden_size = self.session.get_inputs()[1].shape[0::2]

    def run(self, tokens: Tensor, state: Sequence[Tensor] | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        B = tokens.shape[0]
        if state is None:
            state = [torch.zeros(self.layers, B, self.hidden_size)] * len(self.state_inputs)
        feeds = {"tokens": tokens.numpy().astype(np.int64, copy=False)}
        for name, s in zip(self.state_inputs, state, strict=True):
            feeds[name] = s.detach().float().contiguous().numpy()
        logits, *new_state = self.session.run(None, feeds)
        return torch.from_numpy(logits), tuple(torch.from_numpy(s) for s in new_state)

    def step(self, tokens: Tensor, state: Sequence[Tensor] | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        logits, state = self.run(tokens, state)                                 # (B, V)
        return logits.log_softmax(-1), state


class OnnxTaggerEmissions(OnnxSession):
    """An exported tagger emission network under onnxruntime: ``emissions(batch)``."""

    kind = "tagger emissions"
    expects = ("words",)

    def emissions(self, batch) -> Tensor:
        """``batch`` (a TaggerBatch or TaggerInputs) -> emissions (B, T, K) float32."""
        feeds = {name: getattr(batch, name).numpy().astype(np.int64, copy=False)
                 for name in self.inputs}  # the exporter drops inputs a model never reads
        return torch.from_numpy(self.session.run(["emissions"], feeds)[0])


def onnx_file_for(model_dir: str | os.PathLike, onnx: str | os.PathLike | None) -> Path:
    """The ONNX file for the checkpoint in ``model_dir``: ``onnx`` (the ``--onnx`` option) if
    given, else ``model.onnx`` next to the weights; a clear error if it is missing."""
    if onnx is not None:
        if not Path(onnx).is_file():
            raise FileNotFoundError(f"--onnx {onnx} does not exist")
        return Path(onnx)
    path = default_onnx_path(model_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"no ONNX file for {model_dir}: looked for {path}; run `recur export {model_dir}` "
            f"first, or give the exported file with --onnx FILE")
    return path


def open_session(kind: type[OnnxSession], model_dir: str | os.PathLike,
                 onnx: str | os.PathLike | None) -> Any:
    """``kind(file)`` for the checkpoint in ``model_dir`` (file from ``onnx_file_for``),
    refused if the file records other weights than the checkpoint's."""
    from recur.training.checkpoint import resolve

    session = kind(onnx_file_for(model_dir, onnx))
    digest = session.metadata.get(WEIGHTS_DIGEST)
    folder = resolve(model_dir)
    if digest is not None and digest != weights_digest(folder):
        raise ExportError(f"{session.path} was exported from other weights than those in "
                          f"{folder}; export again: recur export {model_dir} --out {session.path}")
    return session


class OnnxSentimentModel(SentimentModel):
    """``SentimentModel`` whose forward pass runs the exported graph in onnxruntime.

    ``OnnxSentimentModel.load(DIR, onnx=FILE)``; without ``onnx`` it uses ``model.onnx``
    next to the weights if there is one, else exports to a temporary file first.
    Tokenizing, batching and labels are the torch model's.
    """

    session: OnnxClassifier

    @classmethod
    def load(cls, path: str | os.PathLike, onnx: str | os.PathLike | None = None) -> OnnxSentimentModel:
        import tempfile

        model = super().load(path)
        if onnx is None and not default_onnx_path(path).is_file():
            with tempfile.TemporaryDirectory(prefix="recur-onnx-") as tmp:
                exported = export_classifier(model.model, Path(tmp) / "model.onnx", check=False)
                model.session = OnnxClassifier(exported.path)
        else:
            model.session = open_session(OnnxClassifier, path, onnx)
        return model

    def probabilities(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return torch.from_numpy(self.session.probabilities(tokens.numpy(), lengths.numpy()))


class OnnxLanguageModel(TrainedLanguageModel):
    """``TrainedLanguageModel`` whose ``step`` runs the exported step graph in onnxruntime.

    ``OnnxLanguageModel.load(DIR, onnx=FILE)`` (default: ``model.onnx`` next to the
    weights). ``generate`` and ``beam`` decode with ``recur.generation`` exactly as the
    torch model does, calling this ``step``; the codec, prompts and conditions are the
    torch model's.
    """

    session: OnnxLanguageModelStep

    @classmethod
    def load(cls, path: str | os.PathLike, onnx: str | os.PathLike | None = None) -> OnnxLanguageModel:
        model = super().load(path)
        model.session = open_session(OnnxLanguageModelStep, path, onnx)
        c = model.model.config
        if (model.session.layers, model.session.hidden_size) != (c.num_layers, c.hidden_size) \
                or len(model.session.state_inputs) != len(model.model.state_names):
            raise ExportError(f"{model.session.path} is a step graph of another shape "
                              f"(state {model.session.state_inputs}, L {model.session.layers}, "
                              f"H {model.session.hidden_size}) than the model in {path}")
        return model

    def step(self, tokens: Tensor, state: Sequence[Tensor] | None = None
             ) -> tuple[Tensor, tuple[Tensor, ...]]:
        return self.session.step(tokens, state)

    def decoding(self, cache=None, state=None):
        if cache is not None:
            raise ExportError("the continuous cache needs the model's output vectors, and the "
                              "exported step graph gives only logits: decode with the torch "
                              "backend to use a cache")
        return super().decoding(cache, state)


class OnnxNERModel(NERModel):
    """``NERModel`` whose emission network runs the exported graph in onnxruntime; the
    CRF's Viterbi (``SequenceTagger.decode`` with the given emissions) stays in torch.

    ``OnnxNERModel.load(DIR, onnx=FILE)`` (default: ``model.onnx`` next to the weights)."""

    session: OnnxTaggerEmissions

    @classmethod
    def load(cls, path: str | os.PathLike, onnx: str | os.PathLike | None = None) -> OnnxNERModel:
        model = super().load(path)
        model.session = open_session(OnnxTaggerEmissions, path, onnx)
        return model

    def emissions(self, batch) -> Tensor:
        return self.session.emissions(batch)
