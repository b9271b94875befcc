"""``Recurrent``: runs a cell over time — stacked, bidirectional, with lengths and state.

Two paths compute the same function (tested equal):

* the **readable path** loops over t with the cell's own equations (``cell.recur``), after
  one GEMM for the input projection of the whole sequence; minGRU/minLSTM use their scan;
* the **fused path** hands the same parameters to torch's fused kernels (oneDNN on CPU,
  cuDNN on GPU — the calls torch.nn.LSTM/GRU/RNN make). With ``lengths`` on a GPU it
  packs the sequence; on a CPU, where packing leaves oneDNN for a ~30x slower path, it
  runs the kernel up to the batch's shortest length and the readable steps after it.
  It is taken when every cell is an LSTM, a GRU with ``reset="after"`` or a tanh/relu
  Elman RNN (a Keras-style single bias is passed with a zero second bias).

With ``checkpoint_chunk=K`` a training forward runs each layer-direction in chunks of K
time steps under ``torch.utils.checkpoint``, carrying the state from chunk to chunk: only
the chunk inputs, the outputs and the boundary states stay in memory, and each chunk's
inner activations are recomputed during backward (one extra forward pass). Outputs and
gradients are those of the plain path (tested in float64).

Padding convention: batches are right-padded; ``lengths`` (B,) gives each sequence's real
length. Padded positions never influence outputs or final states, the reverse direction
starts at each sequence's own last token, and outputs at padded positions are zero.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from torch.utils.checkpoint import checkpoint

from recur.cells import CELLS, CellBase, make_cell
from recur.cells.base import check_positive_int
from recur.cells.elman import Elman
from recur.cells.gru import GRU
from recur.cells.lstm import LSTM
from recur.cells.minimal import MinGRU, MinLSTM, _MinimalCell


class RecurrentOutput(NamedTuple):
    """What ``Recurrent`` returns.

    outputs: (B, T, dirs·H) from ``forward`` — the last layer's h_t, forward and reverse
        directions concatenated on the last axis, zero at padded positions; (B, H) from
        ``step``.
    state: tuple with one tensor per state name (``(h,)`` or the LSTM's ``(h, c)``), each
        (L·dirs, B, H), layer-major: index ``layer * dirs + direction`` (direction 0 is
        forward, 1 reverse) — torch.nn's layout. For the reverse direction the final state
        is the one after reading each sequence's *first* token.
    """

    outputs: Tensor
    state: tuple[Tensor, ...]


class Recurrent(nn.Module):
    """A stack of recurrent cells run over (B, T, D) sequences.

    Args:
        cell: cell name — ``elman`` (``rnn``), ``gated``, ``gru``, ``lstm``, ``mingru``,
            ``minlstm``.
        input_size: D.
        hidden_size: H.
        num_layers: L, stacked layers; layer l > 0 reads layer l-1's outputs.
        bidirectional: add a reverse-direction cell per layer; outputs become 2H wide.
        dropout: dropout probability on the outputs of every layer but the last (training
            mode only), as torch.nn.
        fused: ``"auto"`` (use a fused kernel when the cells allow it), ``False``
            (always the readable path) or ``True`` (require the fused kernel). On CPU the
            GRU (reset after) and Elman cells run recur's compiled loop
            (``recur.kernels``, faster than torch's generic path there) when training,
            and minGRU / minLSTM with the sequential scan always; LSTMs run torch's
            oneDNN kernel, except when training full-length batches under bf16 autocast,
            where recur's compiled LSTM loop (bf16 GEMMs, fp32 gates) is faster; on GPU
            the GRU, Elman and LSTM run cuDNN.
        checkpoint_chunk: ``None`` (default) or K, a positive int: gradient checkpointing
            over time. When gradients are being recorded, each layer-direction runs in
            chunks of K steps under ``torch.utils.checkpoint``, state carried between
            chunks, so activation memory grows with T/K boundary states plus one chunk
            instead of every step's gates; backward recomputes each chunk's forward
            (≈ one extra forward pass). Same outputs and gradients as without it; ignored
            under ``torch.no_grad()``. Measured in docs/benchmarks.md.
        **cell_options: passed to every cell (``activation``, ``reset``, ``forget_bias``,
            ``bias``, ``single_bias``, ``init``, ``scan``).

    Parameters are named ``cells.{layer * dirs + direction}.weight_ih`` etc.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        fused: bool | str = "auto",
        checkpoint_chunk: int | None = None,
        **cell_options,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
        if fused not in ("auto", True, False):
            raise ValueError(f"fused must be 'auto', True or False, got {fused!r}")
        if checkpoint_chunk is not None:
            check_positive_int("checkpoint_chunk", checkpoint_chunk)
        self.checkpoint_chunk = checkpoint_chunk
        self.cell_name = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dropout = float(dropout)
        self.cells = nn.ModuleList(
            make_cell(cell, input_size if layer == 0 else hidden_size * self.num_directions,
                      hidden_size, **cell_options)
            for layer in range(num_layers)
            for _ in range(self.num_directions)
        )
        self.kernel = self._fused_kernel()
        if fused is True and self.kernel is None:
            raise ValueError(
                f"fused=True needs a cell torch has a fused kernel for (lstm; gru with "
                f"reset='after'; elman with tanh or relu), got "
                f"{self.cells[0]!r}"
            )
        self.use_fused = fused is not False and self.kernel is not None
        first = self.cells[0]
        compilable = (type(first) is GRU and first.reset == "after") \
            or type(first) in (Elman, MinGRU, MinLSTM)
        self.use_compiled = fused is not False and compilable

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.cells[0].state_names

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    def _fused_kernel(self) -> str | None:
        """The name of torch's fused op that computes exactly these cells, or None."""
        first = self.cells[0]
        if type(first) is LSTM:
            return "lstm"
        if type(first) is GRU and first.reset == "after":
            return "gru"
        if type(first) is Elman and first.activation in ("tanh", "relu"):
            return f"rnn_{first.activation}"
        return None

    # -- state ----------------------------------------------------------------------------

    def initial_state(
        self, batch_size: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, ...]:
        """Zeros: one (L·dirs, B, H) tensor per state name."""
        p = self.cells[0].weight_ih
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        return tuple(torch.zeros(shape, device=device or p.device, dtype=dtype or p.dtype)
                     for _ in self.state_names)

    # -- forward over a sequence ----------------------------------------------------------

    def forward(
        self,
        x: Tensor,
        state: tuple[Tensor, ...] | None = None,
        lengths: Tensor | None = None,
    ) -> RecurrentOutput:
        """Run the stack over a batch of sequences.

        Args:
            x: (B, T, D) right-padded inputs.
            state: initial state, one (L·dirs, B, H) tensor per state name; zeros if None.
            lengths: (B,) integer lengths in [1, T]; None means every sequence has length T.

        Returns:
            ``RecurrentOutput(outputs (B, T, dirs·H), state)`` — see ``RecurrentOutput``.
        """
        lengths = self._check_input(x, state, lengths)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        state = tuple(state)
        if self._use_checkpoint(x):
            return self._forward_by_layer(x, state, lengths,
                                          checkpointed(self._cell_runner(x), self.checkpoint_chunk))
        if self._use_compiled(x):
            return self._forward_by_layer(x, state, lengths, run_compiled_cell)
        if lengths is None and self._use_compiled_lstm(x):
            return self._forward_by_layer(x, state, None, run_compiled_lstm)
        if not self.use_fused:
            return self._forward_by_layer(x, state, lengths, run_cell)
        if lengths is None:
            return self._forward_fused(x, state)
        if x.is_cuda:
            return self._forward_packed(x, state, lengths)
        # On CPU a packed sequence leaves oneDNN for a generic path ~30x slower (measured,
        # docs/benchmarks.md): run the fused kernel up to the shortest length, then the
        # readable steps over the ragged tail (short when batches are bucketed by length).
        return self._forward_by_layer(x, state, lengths, self._run_fused_cell)

    def _use_checkpoint(self, x: Tensor) -> bool:
        """Checkpoint over time: asked for, and a backward pass may follow."""
        return self.checkpoint_chunk is not None and torch.is_grad_enabled() \
            and (x.requires_grad or any(p.requires_grad for p in self.parameters())) \
            and not _exporting()

    def _cell_runner(self, x: Tensor):
        """The ``run(cell, x, state, mask)`` the plain forward would use for one cell."""
        if self._use_compiled(x):
            return run_compiled_cell
        if not self.use_fused:
            return run_cell
        return self._run_fused_cell

    def _use_compiled(self, x: Tensor) -> bool:
        """recur's compiled CPU loop: GRU and Elman when training (their hand-written BPTT
        is faster than torch's generic path there; for inference torch's kernel is as fast);
        minGRU / minLSTM with the sequential scan always (torch has no kernel for them)."""
        if not self.use_compiled or x.device.type != "cpu" \
                or x.dtype not in (torch.float32, torch.float64) \
                or torch.is_autocast_enabled("cpu") or _exporting():
            return False
        first = self.cells[0]
        if isinstance(first, _MinimalCell):
            if first.scan_method == "parallel":
                return False
        elif not torch.is_grad_enabled() \
                or not (x.requires_grad or first.weight_hh.requires_grad):
            return False
        from recur import kernels

        return kernels.available()

    def _use_compiled_lstm(self, x: Tensor) -> bool:
        """recur's compiled LSTM loop for bf16 training on CPU with one thread: its GEMMs all
        run in bf16 (AMX) with fp32 gate math, where oneDNN's bf16 backward pass costs 3x its
        forward. With two threads oneDNN's bf16 LSTM was the faster one (its per-step GEMMs
        use prepacked weights), so it keeps those (docs/benchmarks.md, "bf16 vs fp32");
        ``RECUR_CPU_KERNELS=always`` overrides. fp32 training and inference keep oneDNN."""
        from recur import kernels

        if torch.get_num_threads() > 1 and not kernels.forced():
            return False
        if type(self.cells[0]) is not LSTM or not self.use_fused or x.device.type != "cpu" \
                or not torch.is_autocast_enabled("cpu") \
                or torch.get_autocast_dtype("cpu") != torch.bfloat16 \
                or not torch.is_grad_enabled() \
                or not (x.requires_grad or self.cells[0].weight_hh.requires_grad) \
                or _exporting():
            return False
        return kernels.lstm_available()

    def _forward_by_layer(
        self, x: Tensor, state: tuple[Tensor, ...], lengths: Tensor | None, run
    ) -> RecurrentOutput:
        """Layer by layer, direction by direction; ``run(cell, x, state, mask)`` runs one."""
        B, T, _ = x.shape
        mask = None
        if lengths is not None:
            mask = torch.arange(T, device=x.device) < lengths.to(x.device).unsqueeze(1)  # (B, T)
        finals: list[list[Tensor]] = [[] for _ in self.state_names]
        layer_input = x                                                         # (B, T, D)
        for layer in range(self.num_layers):
            direction_outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                cell = self.cells[index]
                state0 = tuple(s[index] for s in state)                         # (B, H) each
                seq = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
                out, state_T = run(cell, seq, state0, mask)                     # (B, T, H)
                if direction == 1:
                    out = reverse_padded(out, lengths)
                direction_outputs.append(out)
                for k, s in enumerate(state_T):
                    finals[k].append(s)
            layer_input = direction_outputs[0] if len(direction_outputs) == 1 \
                else torch.cat(direction_outputs, dim=-1)                       # (B, T, dirs·H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, self.dropout, training=True)
        outputs = layer_input
        if mask is not None:
            outputs = outputs * mask.unsqueeze(-1).to(outputs.dtype)            # zero padding
        return RecurrentOutput(outputs, tuple(torch.stack(f, dim=0) for f in finals))

    def _kernel_args(self, cells) -> list[Tensor]:
        weights: list[Tensor] = []
        for cell in cells:
            weights += [cell.weight_ih, cell.weight_hh]
            if cell.bias:
                # Keras-style single bias: the kernel's second bias is a constant zero.
                bias_hh = cell.bias_hh if cell.bias_hh is not None else cell.bias_ih.new_zeros(())
                weights += [cell.bias_ih, bias_hh.expand_as(cell.bias_ih)]
        return weights

    def _call_kernel(self, x: Tensor, hx: tuple[Tensor, ...], cells, num_layers: int,
                     bidirectional: bool, *packed) -> tuple[Tensor, ...]:
        """torch's fused op (what nn.LSTM/GRU/RNN call) on our parameters.

        ``x`` is (B, T, D) batch-first, or packed data followed by ``packed`` =
        (batch_sizes,). Returns (outputs, *final state).
        """
        if torch.is_autocast_enabled(x.device.type):
            # oneDNN's LSTM rejects float32 input under CPU autocast: cast it ourselves.
            dtype = torch.get_autocast_dtype(x.device.type)
            x, hx = x.to(dtype), tuple(h.to(dtype) for h in hx)
        kernel = getattr(_VF, self.kernel)
        h = hx if self.kernel == "lstm" else hx[0]
        args = (self._kernel_args(cells), self.cells[0].bias, num_layers,
                self.dropout if num_layers > 1 else 0.0, self.training, bidirectional)
        if packed:
            return tuple(kernel(x, packed[0], h, *args))
        return tuple(kernel(x, h, *args, True))

    def _forward_fused(self, x: Tensor, state: tuple[Tensor, ...]) -> RecurrentOutput:
        """The whole stack in one fused call: every sequence has length T."""
        result = self._call_kernel(x, state, self.cells, self.num_layers, self.bidirectional)
        return RecurrentOutput(result[0], result[1:])

    def _forward_packed(
        self, x: Tensor, state: tuple[Tensor, ...], lengths: Tensor
    ) -> RecurrentOutput:
        """The whole stack on a packed sequence (cuDNN handles it natively)."""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hx = tuple(h.index_select(1, packed.sorted_indices) for h in state)
        result = self._call_kernel(packed.data, hx, self.cells, self.num_layers,
                                   self.bidirectional, packed.batch_sizes)
        out = PackedSequence(result[0], packed.batch_sizes, packed.sorted_indices,
                             packed.unsorted_indices)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        final = tuple(h.index_select(1, packed.unsorted_indices) for h in result[1:])
        return RecurrentOutput(outputs, final)

    def _run_fused_cell(
        self, cell: CellBase, x: Tensor, state: tuple[Tensor, ...], mask: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One cell over one direction: fused up to the shortest length, readable after.

        Up to the shortest length every sequence is real, so the fused kernel's steps are
        exactly the cell's; the tail runs ``run_cell`` with the mask. Without a mask the
        whole sequence is fused.
        """
        split = x.shape[1] if mask is None else int(mask.sum(1).min())     # shortest length
        if split == 0:                      # a checkpoint chunk wholly past some sequence's end
            return run_cell(cell, x, state, mask)
        hx = tuple(s.unsqueeze(0) for s in state)                           # (1, B, H) each
        result = self._call_kernel(x[:, :split], hx, [cell], 1, False)
        head, state = result[0], tuple(s.squeeze(0) for s in result[1:])    # (B, split, H)
        if split == x.shape[1]:
            return head, state
        tail, state = run_cell(cell, x[:, split:], state, mask[:, split:])
        return torch.cat([head.to(tail.dtype), tail], dim=1), state

    # -- one step (generation, streaming) -------------------------------------------------

    def step(self, x: Tensor, state: tuple[Tensor, ...] | None = None) -> RecurrentOutput:
        """Advance one time step with carried state (unidirectional stacks only).

        Args:
            x: (B, D) input at time t.
            state: one (L, B, H) tensor per state name; zeros if None.

        Returns:
            ``RecurrentOutput(outputs (B, H), state)``: the top layer's h_t and the new state.
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional layer: a reverse direction "
                             "cannot be advanced one step at a time (bidirectional=True)")
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, {self.input_size}), got {got}")
        self._check_state(state, x.shape[0])
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        new_state: list[tuple[Tensor, ...]] = []
        layer_input = x                                                         # (B, D)
        for layer, cell in enumerate(self.cells):
            s = cell(layer_input, tuple(st[layer] for st in state))            # (B, H) each
            new_state.append(s)
            layer_input = s[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, self.dropout, training=True)
        stacked = tuple(torch.stack([s[k] for s in new_state]) for k in range(len(self.state_names)))
        return RecurrentOutput(layer_input, stacked)

    # -- input checks ---------------------------------------------------------------------

    def _check_input(
        self, x: Tensor, state: tuple[Tensor, ...] | None, lengths: Tensor | None
    ) -> Tensor | None:
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(f"x must have shape (B, T, D) (3 dims), got {x.dim()} dims "
                             f"{tuple(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x must have D = input_size = {self.input_size} features, got "
                             f"shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        B, T, _ = x.shape
        if T == 0 or B == 0:
            raise ValueError(f"x must have B > 0 and T > 0, got shape {tuple(x.shape)}")
        self._check_state(state, B)
        if lengths is None:
            return None
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.shape[0] != B:
            raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise ValueError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > T:
            raise ValueError(f"lengths must be in [1, T={T}], got values in [{low}, {high}]")
        return lengths

    def _check_state(self, state: tuple[Tensor, ...] | None, batch_size: int) -> None:
        if state is None:
            return
        names = self.state_names
        if isinstance(state, Tensor) or len(state) != len(names):
            got = "a Tensor" if isinstance(state, Tensor) else f"{len(state)} tensors"
            raise ValueError(f"state must be a tuple ({', '.join(names)}) of {len(names)} "
                             f"tensors, got {got}")
        expected = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        for name, s in zip(names, state, strict=True):
            if not isinstance(s, Tensor) or tuple(s.shape) != expected:
                got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"state {name} must have shape (L·dirs, B, H) = {expected}, "
                                 f"got {got}")

    def extra_repr(self) -> str:
        path = f"fused={self.kernel}" if self.use_fused else "readable"
        if self.use_compiled:
            path += ", compiled on CPU"
        if self.checkpoint_chunk is not None:
            path += f", checkpoint_chunk={self.checkpoint_chunk}"
        return (f"{self.cell_name}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
                f"dropout={self.dropout}, path={path}")

    # -- interop --------------------------------------------------------------------------

    @classmethod
    def from_torch(cls, module: nn.LSTM | nn.GRU | nn.RNN, **options) -> Recurrent:
        """Build a Recurrent holding a copy of a torch.nn.LSTM / GRU / RNN's weights.

        The module must be batch_first-agnostic (recur is batch-first) and have no
        projection (``proj_size`` = 0).
        """
        if isinstance(module, nn.LSTM):
            if module.proj_size:
                raise ValueError(f"module must have proj_size 0, got {module.proj_size}")
            cell, extra = "lstm", {}
        elif isinstance(module, nn.GRU):
            cell, extra = "gru", {"reset": "after"}
        elif isinstance(module, nn.RNN):
            cell, extra = "elman", {"activation": module.nonlinearity}
        else:
            raise ValueError(f"module must be nn.LSTM, nn.GRU or nn.RNN, got {type(module).__name__}")
        layer = cls(cell, module.input_size, module.hidden_size, module.num_layers,
                    bidirectional=module.bidirectional, dropout=module.dropout,
                    bias=module.bias, **extra, **options)
        suffixes = ["", "_reverse"][: layer.num_directions]
        with torch.no_grad():
            for lyr in range(module.num_layers):
                for d, suffix in enumerate(suffixes):
                    target = layer.cells[lyr * layer.num_directions + d]
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        source = getattr(module, f"{name}_l{lyr}{suffix}", None)
                        if source is not None:
                            getattr(target, name).copy_(source)
        return layer.to(module.weight_ih_l0.device, module.weight_ih_l0.dtype)


def run_cell(
    cell: CellBase, x: Tensor, state: tuple[Tensor, ...], mask: Tensor | None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One cell over one direction: x (B, T, D) -> (outputs (B, T, H), final state).

    Where ``mask`` (B, T) is False the state is carried unchanged, so each sequence's final
    state is the one at its own last real step.
    """
    xw = cell.input_transform(x)                                   # (B, T, G·H): one GEMM
    if isinstance(cell, _MinimalCell):
        hs = cell.scan(xw, state[0], mask)                         # (B, T, H)
        return hs, (hs[:, -1],)
    outputs = []
    steps = xw.unbind(1)  # unbind, never xw[:, t]: indexing makes backward O(T²)
    masks = mask.unbind(1) if mask is not None else [None] * len(steps)
    for xw_t, m_t in zip(steps, masks, strict=True):               # (B, G·H), (B,)
        new = cell.recur(xw_t, state)
        if m_t is not None:
            keep = m_t.unsqueeze(1)                                # (B, 1)
            new = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
        state = new
        outputs.append(state[0])
    return torch.stack(outputs, dim=1), state                      # (B, T, H)


def checkpointed(run, chunk: int):
    """``run(cell, x, state, mask)`` over chunks of ``chunk`` steps, each under
    ``torch.utils.checkpoint``, carrying the state across chunk boundaries.

    Backward recomputes one chunk at a time, so only the chunks' inputs, their outputs
    and the boundary states are kept between forward and backward.
    """
    def run_chunks(
        cell: CellBase, x: Tensor, state: tuple[Tensor, ...], mask: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        outputs = []
        for start in range(0, x.shape[1], chunk):
            x_k = x[:, start:start + chunk]                            # (B, K, D)
            mask_k = None if mask is None else mask[:, start:start + chunk]  # (B, K)

            def one_chunk(x_k: Tensor, *state: Tensor, mask_k=mask_k) -> tuple[Tensor, ...]:
                out, new_state = run(cell, x_k, state, mask_k)        # (B, K, H)
                return (out, *new_state)

            out, *state = checkpoint(one_chunk, x_k, *state, use_reentrant=False)
            outputs.append(out)
        return torch.cat(outputs, dim=1), tuple(state)                # (B, T, H)

    return run_chunks


def run_compiled_cell(
    cell: CellBase, x: Tensor, state: tuple[Tensor, ...], mask: Tensor | None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``run_cell`` for a GRU (reset after), Elman, minGRU or minLSTM cell on recur's
    compiled CPU loop."""
    from recur import kernels

    if isinstance(cell, _MinimalCell):
        name = "mingru" if isinstance(cell, MinGRU) else "minlstm"
        xw = nn.functional.linear(x, cell.weight_ih)               # (B, T, G·H): one GEMM
        hs = kernels.minimal(name, xw, state[0], mask, cell.bias_ih)   # (B, T, H)
        return hs, (hs[:, -1],)
    xw = cell.input_transform(x)                                   # (B, T, G·H): one GEMM
    if isinstance(cell, GRU):
        outputs, h = kernels.gru(xw, state[0], mask, cell.weight_hh, cell.bias_hh)
    else:
        outputs, h = kernels.elman(xw, state[0], mask, cell.weight_hh, cell.bias_hh,
                                   cell.activation)
    return outputs, (h,)


def run_compiled_lstm(
    cell: LSTM, x: Tensor, state: tuple[Tensor, ...], mask: Tensor | None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``run_cell`` for an LSTM on recur's compiled CPU loop (full-length batches only):
    under bf16 autocast the input projection and every GEMM run in bf16, the gates and the
    cell state in fp32."""
    from recur import kernels

    assert mask is None, "the compiled LSTM loop takes full-length batches only"
    biases = [b for b in (cell.bias_ih, cell.bias_hh) if b is not None]
    bias = sum(biases[1:], biases[0]) if biases else None           # (4H,)
    outputs, h, c = kernels.lstm(x, state[0], state[1], cell.weight_ih, cell.weight_hh, bias)
    return outputs, (h, c.to(h.dtype))                             # (B, T, H)


def _exporting() -> bool:
    """True while tracing or exporting (ONNX, TorchScript, torch.compile): custom autograd
    functions do not export, torch's fused ops do."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() \
        or torch.compiler.is_compiling()


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays at the end.

    x: (B, T, F); lengths: (B,) or None (reverse the whole time axis).
    """
    if lengths is None:
        return x.flip(1)
    B, T, _ = x.shape
    t = torch.arange(T, device=x.device).unsqueeze(0)                  # (1, T)
    L = lengths.to(x.device).unsqueeze(1)                              # (B, 1)
    index = torch.where(t < L, L - 1 - t, t)                           # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))
