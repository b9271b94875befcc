"""Encoder-decoder (sequence to sequence): ``Seq2Seq`` — the notes' translation network.

An encoder reads the source (embedding → Recurrent, bidirectional and stacked); a decoder
generates the target one token at a time, each step fed the previous target token. Four
architectures, so the notes' progression can be compared (``Seq2SeqConfig.architecture``):

* ``sutskever`` — Sutskever et al. 2014: the encoder's final state (bridged by a tanh
  layer) initialises the decoder; nothing else of the source reaches it.
* ``cho`` — Cho et al. 2014 (§2.2): as above, and the summary vector c (the encoder's
  final state) is also fed at every step: s_t = f(s_{t-1}, [e(y_{t-1}); c]) and the
  readout sees [s_t; c; e(y_{t-1})].
* ``bahdanau`` — Bahdanau et al. 2015: attention queried by the previous state picks a
  context c_t = attend(s_{t-1}, memory); s_t = f(s_{t-1}, [e(y_{t-1}); c_t]); readout
  [s_t; c_t; e(y_{t-1})]. Additive scoring by default.
* ``luong`` — Luong et al. 2015: s_t = f(s_{t-1}, e(y_{t-1})) first, then
  c_t = attend(s_t, memory) and the attentional vector h̃_t = tanh(W_c [c_t; s_t]);
  with ``input_feeding`` h̃_{t-1} is also fed to the next step (§3.3). Dot or general
  scoring ("general" by default).

Every architecture reads out logits = W_out · dropout(tanh(W_r [pieces])) (Luong's h̃ is
that readout). With ``tie_embeddings`` W_out is the target embedding matrix (the readout
then has embed_dim units).

Training runs the decoder over the whole target at once (the fused recurrent kernel, then
batched attention) when nothing makes a step depend on the previous step's readout
(sutskever, cho, luong without input feeding, teacher forcing 1); otherwise it loops over
``step``, the same function decoding uses — both paths are tested equal.

Token conventions: ``pad_id`` pads sources and targets; targets fed to the decoder start
with ``bos_id``; outputs end with ``eos_id``.

Decoding: ``greedy`` here; beam search drives ``step`` through
``recur.generation.beam_search`` (``beam_search`` below is the adapter).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from recur.attention import ATTENTIONS, Attention
from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.layers import Recurrent

ARCHITECTURES = ("sutskever", "cho", "bahdanau", "luong")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Everything needed to rebuild a ``Seq2Seq`` (saved in config.json)."""

    src_vocab_size: int
    tgt_vocab_size: int
    bos_id: int
    eos_id: int
    pad_id: int = 0
    architecture: str = "luong"           # sutskever | cho | bahdanau | luong
    attention: str | None = None          # additive | dot | general; None: the architecture's own
    input_feeding: bool = False           # luong only
    embed_dim: int = 256
    cell: str = "gru"
    encoder_hidden: int = 256             # per direction
    encoder_layers: int = 1
    bidirectional: bool = True
    decoder_hidden: int = 512
    decoder_layers: int = 1
    dropout: float = 0.2                  # embeddings, between layers, before the output layer
    tie_embeddings: bool = True           # output layer = target embedding matrix
    cell_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "embed_dim", "encoder_hidden",
                     "encoder_layers", "decoder_hidden", "decoder_layers"):
            check_positive_int(name, getattr(self, name))
        for name in ("bos_id", "eos_id", "pad_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 0 <= value < self.tgt_vocab_size:
                raise ValueError(f"{name} must be an int in [0, tgt_vocab_size="
                                 f"{self.tgt_vocab_size}), got {value!r}")
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("cell", self.cell, tuple(CELLS))
        if self.attention is not None:
            check_choice("attention", self.attention, ATTENTIONS)
            if self.architecture in ("sutskever", "cho"):
                raise ValueError(f"attention must be None for architecture "
                                 f"{self.architecture!r} (it has none), got {self.attention!r}")
        if self.input_feeding and self.architecture != "luong":
            raise ValueError(f"input_feeding needs architecture 'luong', got {self.architecture!r}")
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}")

    @property
    def attention_kind(self) -> str | None:
        if self.architecture == "bahdanau":
            return self.attention or "additive"
        if self.architecture == "luong":
            return self.attention or "general"
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        return cls(**data)


class Memory(NamedTuple):
    """The encoded source, as the decoder reads it.

    outputs: (B, S, K) the encoder's top-layer outputs (K = dirs·H_enc), zero at padding.
    mask: (B, S) True at real source positions.
    keys: (B, S, A) the attention's query-independent projection of ``outputs`` (or an
        empty tensor without attention).
    summary: (B, K) the top layer's final states, forward and reverse concatenated.
    """

    outputs: Tensor
    mask: Tensor
    keys: Tensor
    summary: Tensor


class DecoderState(NamedTuple):
    """What ``step`` carries. rnn: one (L, B, H) tensor per state name; feed: (B, R) the
    previous attentional vector (input feeding; (B, 0) otherwise); memory: the source."""

    rnn: tuple[Tensor, ...]
    feed: Tensor
    memory: Memory


class StepOutput(NamedTuple):
    """logits (B, V); state; weights (B, S) attention weights (None without attention);
    readout (B, R) the vector the logits are computed from."""

    logits: Tensor
    state: DecoderState
    weights: Tensor | None
    readout: Tensor


class Seq2SeqOutput(NamedTuple):
    """logits (B, T, V); weights (B, T, S) attention weights, or None."""

    logits: Tensor
    weights: Tensor | None


class Translation(NamedTuple):
    """One decoded output: tokens (eos excluded), score (sum of log-probabilities, or the
    beam's length-normalised score), and the attention weights (len(tokens), S) if any."""

    tokens: list[int]
    score: float
    weights: Tensor | None


class Seq2Seq(nn.Module):
    """Encoder-decoder with optional attention; see the module docstring."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        dirs = 2 if c.bidirectional else 1
        memory_size = dirs * c.encoder_hidden                                   # K
        self.src_embed = nn.Embedding(c.src_vocab_size, c.embed_dim, padding_idx=c.pad_id)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.embed_dim, padding_idx=c.pad_id)
        self.encoder = Recurrent(c.cell, c.embed_dim, c.encoder_hidden, c.encoder_layers,
                                 bidirectional=c.bidirectional, dropout=c.dropout, **c.cell_options)
        self.drop = nn.Dropout(c.dropout)
        # the tanh bridge from the encoder summary to every decoder layer's initial state
        self.bridge = nn.ModuleList(nn.Linear(memory_size, c.decoder_layers * c.decoder_hidden)
                                    for _ in self.encoder.state_names)
        kind = c.attention_kind
        self.attention = Attention(kind, c.decoder_hidden, memory_size) if kind else None
        readout_size = c.embed_dim if c.tie_embeddings else c.decoder_hidden    # R
        self.feed_size = readout_size if c.input_feeding else 0
        extra_input = {"sutskever": 0, "cho": memory_size, "bahdanau": memory_size,
                       "luong": self.feed_size}[c.architecture]
        self.decoder = Recurrent(c.cell, c.embed_dim + extra_input, c.decoder_hidden,
                                 c.decoder_layers, dropout=c.dropout, **c.cell_options)
        readout_in = {"sutskever": c.decoder_hidden,
                      "cho": c.decoder_hidden + memory_size + c.embed_dim,
                      "bahdanau": c.decoder_hidden + memory_size + c.embed_dim,
                      "luong": memory_size + c.decoder_hidden}[c.architecture]
        self.readout = nn.Linear(readout_in, readout_size)
        self.out = nn.Linear(readout_size, c.tgt_vocab_size)
        if c.tie_embeddings:
            self.out.weight = self.tgt_embed.weight

    def example_inputs(self, batch_size: int = 2, length: int = 20) -> tuple[Tensor, Tensor, Tensor]:
        """Inputs for ``recur.summary``: src (B, S), src_lengths (B,), tgt_in (B, T)."""
        src = torch.full((batch_size, length), self.config.bos_id % self.config.src_vocab_size)
        tgt_in = torch.full((batch_size, length), self.config.bos_id)
        return src, torch.full((batch_size,), length), tgt_in

    # -- encoder --------------------------------------------------------------------------

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Memory, tuple[Tensor, ...]]:
        """Read the source.

        Args:
            src: (B, S) right-padded source ids.
            src_lengths: (B,) lengths in [1, S].

        Returns:
            (Memory, the decoder's initial rnn state: one (L_dec, B, H_dec) per state name).
        """
        c = self.config
        x = self.drop(self.src_embed(src))                                      # (B, S, E)
        outputs, final = self.encoder(x, lengths=src_lengths)                   # (B, S, K)
        B, S = src.shape
        dirs = self.encoder.num_directions
        summary = torch.cat(list(final[0][-dirs:]), dim=-1)                     # (B, K)
        mask = torch.arange(S, device=src.device) < src_lengths.to(src.device).unsqueeze(1)  # (B, S)
        keys = self.attention.prepare(outputs) if self.attention else outputs.new_zeros(B, S, 0)
        init = []
        for bridge, state in zip(self.bridge, final, strict=True):
            top = torch.cat(list(state[-dirs:]), dim=-1)                        # (B, K)
            h0 = torch.tanh(bridge(top))                                        # (B, L·H)
            init.append(h0.view(B, c.decoder_layers, c.decoder_hidden).transpose(0, 1).contiguous())
        return Memory(outputs, mask, keys, summary), tuple(init)

    def start(self, src: Tensor, src_lengths: Tensor) -> DecoderState:
        """The decoder state before the first target token."""
        memory, rnn = self.encode(src, src_lengths)
        feed = memory.outputs.new_zeros(src.shape[0], self.feed_size)          # (B, R | 0)
        return DecoderState(rnn, feed, memory)

    # -- one decoder step -----------------------------------------------------------------

    def step(self, tokens: Tensor, state: DecoderState, *, with_logits: bool = True) -> StepOutput:
        """Advance the decoder one token.

        Args:
            tokens: (B,) the previous target token (``bos_id`` at the first step).
            state: from ``start`` or the previous step.
            with_logits: compute the logits (False: ``logits`` is None; training computes
                them later, on the real positions only).

        Returns:
            ``StepOutput(logits (B, V), state, weights (B, S) | None)``.
        """
        arch = self.config.architecture
        memory = state.memory
        e = self.drop(self.tgt_embed(tokens))                                   # (B, E)
        weights = None
        if arch == "sutskever":
            out, rnn = self.decoder.step(e, state.rnn)                          # (B, H)
            pieces = [out]
        elif arch == "cho":
            out, rnn = self.decoder.step(torch.cat([e, memory.summary], -1), state.rnn)
            pieces = [out, memory.summary, e]
        elif arch == "bahdanau":
            query = state.rnn[0][-1]                                            # (B, H) s_{t-1}
            context, weights = self.attention(query, memory.outputs, memory.mask, memory.keys)
            out, rnn = self.decoder.step(torch.cat([e, context], -1), state.rnn)
            pieces = [out, context, e]
        else:  # luong
            x = torch.cat([e, state.feed], -1) if self.feed_size else e         # (B, E [+ R])
            out, rnn = self.decoder.step(x, state.rnn)                          # (B, H) s_t
            context, weights = self.attention(out, memory.outputs, memory.mask, memory.keys)
            pieces = [context, out]
        readout = torch.tanh(self.readout(torch.cat(pieces, -1)))               # (B, R)
        feed = readout if self.feed_size else state.feed
        logits = self.out(self.drop(readout)) if with_logits else None          # (B, V)
        return StepOutput(logits, DecoderState(rnn, feed, memory), weights, readout)

    # -- training forward -------------------------------------------------------------------

    @property
    def parallel_decoder(self) -> bool:
        """True when teacher-forced training can run the decoder over all steps at once."""
        return self.config.architecture != "bahdanau" and not self.config.input_feeding

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor,
                teacher_forcing: float = 1.0, generator: torch.Generator | None = None,
                ) -> Seq2SeqOutput:
        """Logits for every target position.

        Args:
            src: (B, S) source ids; src_lengths: (B,).
            tgt_in: (B, T) decoder inputs: ``bos_id`` then the target (right-padded).
            teacher_forcing: probability of feeding the true previous token at each step
                (decided per step for the whole batch); below 1 the model's own argmax is
                fed otherwise. 1 in evaluation.
            generator: draws the teacher-forcing coins.

        Returns:
            ``Seq2SeqOutput(logits (B, T, V), weights (B, T, S) | None)``.
        """
        readout, weights = self.readouts(src, src_lengths, tgt_in, teacher_forcing, generator)
        return Seq2SeqOutput(self.out(self.drop(readout)), weights)

    def readouts(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor,
                 teacher_forcing: float = 1.0, generator: torch.Generator | None = None,
                 ) -> tuple[Tensor, Tensor | None]:
        """The readout vectors (B, T, R) before the output layer, and the attention weights."""
        state = self.start(src, src_lengths)
        if teacher_forcing >= 1.0 and self.parallel_decoder:
            return self._decode_parallel(tgt_in, state)
        return self._decode_loop(tgt_in, state, teacher_forcing, generator)

    def _decode_parallel(self, tgt_in: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        arch, memory = self.config.architecture, state.memory
        e = self.drop(self.tgt_embed(tgt_in))                                   # (B, T, E)
        T = tgt_in.shape[1]
        weights = None
        if arch == "cho":
            summary = memory.summary.unsqueeze(1).expand(-1, T, -1)             # (B, T, K)
            out, _ = self.decoder(torch.cat([e, summary], -1), state.rnn)       # (B, T, H)
            pieces = [out, summary, e]
        else:
            out, _ = self.decoder(e, state.rnn)                                 # (B, T, H)
            pieces = [out]
            if arch == "luong":
                context, weights = self.attention(out, memory.outputs, memory.mask, memory.keys)
                pieces = [context, out]                                         # (B, T, K), (B, T, H)
        return torch.tanh(self.readout(torch.cat(pieces, -1))), weights         # (B, T, R)

    def _decode_loop(self, tgt_in: Tensor, state: DecoderState, teacher_forcing: float,
                     generator: torch.Generator | None) -> tuple[Tensor, Tensor | None]:
        readouts, weights = [], []
        tokens = None
        for t, gold in enumerate(tgt_in.unbind(1)):                            # (B,) each
            if t > 0 and teacher_forcing < 1.0:
                coin = torch.rand((), generator=generator)
                if float(coin) >= teacher_forcing:
                    gold = tokens  # the model's own previous prediction
            step = self.step(gold, state, with_logits=teacher_forcing < 1.0)
            state = step.state
            readouts.append(step.readout)
            if teacher_forcing < 1.0:
                tokens = step.logits.argmax(-1).detach()
            if step.weights is not None:
                weights.append(step.weights)
        return torch.stack(readouts, 1), torch.stack(weights, 1) if weights else None

    def token_loss(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor,
                   label_smoothing: float = 0.0, teacher_forcing: float = 1.0,
                   generator: torch.Generator | None = None) -> Tensor:
        """Mean (label-smoothed) cross-entropy over the real target tokens.

        The output layer — the costliest matmul — runs on the real positions only.
        tgt_out: (B, T) the targets (``tgt_in`` shifted left, eos added, pad elsewhere).
        """
        readout, _ = self.readouts(src, src_lengths, tgt_in, teacher_forcing, generator)
        real = tgt_out != self.config.pad_id                                    # (B, T)
        logits = self.out(self.drop(readout[real]))                             # (N, V)
        return nn.functional.cross_entropy(logits, tgt_out[real], label_smoothing=label_smoothing)

    def loss(self, logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Mean cross-entropy over the real target tokens. logits (B, T, V); tgt_out (B, T)."""
        return nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(),
                                           ignore_index=self.config.pad_id,
                                           label_smoothing=label_smoothing)

    # -- decoding ---------------------------------------------------------------------------

    def decoding_log_probs(self, logits: Tensor) -> Tensor:
        """(B, V) log-probabilities for decoding: bos and pad are never produced."""
        logits = logits.float()
        logits[:, [self.config.bos_id, self.config.pad_id]] = float("-inf")
        return logits.log_softmax(-1)

    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Tensor, max_len: int | Tensor) -> list[Translation]:
        """Greedy decoding of a batch: the argmax token at every step until ``eos_id``.

        Args:
            src: (B, S); src_lengths: (B,).
            max_len: the most tokens generated (eos included), an int or one per input (B,).

        Returns:
            One Translation per input, in batch order.
        """
        c = self.config
        B = src.shape[0]
        limit = torch.as_tensor(max_len).expand(B).to(src.device)              # (B,)
        state = self.start(src, src_lengths)
        tokens = torch.full((B,), c.bos_id, dtype=torch.long, device=src.device)
        out, scores, attn = [], torch.zeros(B), []
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        for t in range(int(limit.max())):
            step = self.step(tokens, state)
            state = step.state
            log_probs = self.decoding_log_probs(step.logits)                    # (B, V)
            best, tokens = log_probs.max(-1)                                    # (B,)
            scores += torch.where(done, 0.0, best).cpu()
            out.append(tokens)
            if step.weights is not None:
                attn.append(step.weights)
            done |= (tokens == c.eos_id) | (t + 1 >= limit)
            if bool(done.all()):
                break
        generated = torch.stack(out, 1).cpu()                                   # (B, T)
        weights = torch.stack(attn, 1).cpu() if attn else None                  # (B, T, S)
        results = []
        for b in range(B):
            row = generated[b].tolist()[: int(limit[b])]
            n = row.index(c.eos_id) if c.eos_id in row else len(row)
            w = weights[b, :n, : int(src_lengths[b])] if weights is not None else None
            results.append(Translation(row[:n], float(scores[b]), w))
        return results

    @torch.no_grad()
    def beam_search(self, src: Tensor, src_lengths: Tensor, max_len: int, beam_size: int = 5,
                    length_penalty: float = 1.0, n_best: int = 1) -> list[list[Translation]]:
        """Beam search over a batch through ``recur.generation.beam_search``.

        Returns, per input, its ``n_best`` Translations best first (score: the length-
        normalised log-probability the beams are ranked by).
        """
        from recur.generation import beam_search

        c = self.config
        state = self.start(src, src_lengths)

        def step(tokens: Tensor, state: DecoderState):
            out = self.step(tokens, state)
            return self.decoding_log_probs(out.logits), out.state, out.weights

        found = beam_search(step, state, torch.full((src.shape[0],), c.bos_id, dtype=torch.long,
                                                    device=src.device),
                            reorder_state=reorder_state, eos=c.eos_id, beam_size=beam_size,
                            max_len=max_len, length_penalty=length_penalty, n_best=n_best)
        results = []
        for b, hyps in enumerate(found):
            row = []
            for h in hyps:
                tokens = h.tokens[:-1] if h.tokens and h.tokens[-1] == c.eos_id else h.tokens
                w = h.extras[: len(tokens), : int(src_lengths[b])] if h.extras is not None else None
                row.append(Translation(list(tokens), h.score, w))
            results.append(row)
        return results


def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
    """Rows ``index`` (N,) of a DecoderState: the rnn's batch is dimension 1, the rest 0."""
    memory = Memory(*(t.index_select(0, index) for t in state.memory))
    return DecoderState(tuple(s.index_select(1, index) for s in state.rnn),
                        state.feed.index_select(0, index), memory)


def max_target_length(src_lengths: Tensor, ratio: float, extra: int = 5,
                      cap: int | None = None) -> Tensor:
    """(B,) the most target tokens to generate: ceil(ratio · source length) + extra."""
    limit = torch.ceil(src_lengths.float() * ratio).long() + extra
    return limit.clamp(max=cap) if cap is not None else limit


def count_parameters(model: nn.Module) -> int:
    """Distinct trainable parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ARCHITECTURES", "DecoderState", "Memory", "Seq2Seq", "Seq2SeqConfig",
           "Seq2SeqOutput", "StepOutput", "Translation", "count_parameters",
           "max_target_length", "reorder_state"]
