"""A linear-chain conditional random field over per-token emission scores, for taggers.

Lafferty, McCallum & Pereira (2001), "Conditional Random Fields", as used on top of a
BiLSTM by Huang, Xu & Yu (2015) and Lample et al. (2016), "Neural Architectures for
Named Entity Recognition", §2.2: the score of a tag path y for a sentence of n tokens is

    s(x, y) = start[y_1] + Σ_{t=1..n} E[t, y_t] + Σ_{t=2..n} A[y_{t-1}, y_t] + end[y_n]

with emissions E (n, C) from the network and learned transitions A (C, C) (row: from,
column: to) and start / end scores. The model is p(y | x) = exp s(x, y) / Z(x), where

    log Z(x) = log Σ_{y'} exp s(x, y')

is computed by the **forward algorithm** in log space (α_t(j) = logsumexp_i(α_{t-1}(i) +
A[i, j]) + E[t, j]) and the best path by **Viterbi** (the same recursion with max and
back-pointers). Both run batched over right-padded sentences: where ``mask`` is False
the recursion carries α unchanged and Viterbi's back-pointer is the identity, so each
sentence ends at its own length.

**Constraints.** ``allowed_transitions(tags, scheme)`` lists which moves a tagging scheme
permits (IOB2: ``I-PER`` only after ``B-PER`` or ``I-PER``; BIOES: ``E-LOC`` only after
``B-LOC`` / ``I-LOC``; start and end rules too). The CRF adds ``-10000`` (``FORBIDDEN``)
to every forbidden score in training and decoding, so the partition function only counts
valid paths and Viterbi never returns an invalid one. (A finite constant rather than -inf
keeps every gradient finite.)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

SCHEMES = ("iob1", "iob2", "bioes")
FORBIDDEN = -10_000.0
"""Score added to a transition the scheme forbids: exp(-10000) is 0 in float32 and float64."""


class Allowed(NamedTuple):
    """Which moves a tagging scheme permits, as boolean masks over tag indices.

    transitions: (C, C), ``[i, j]`` True if tag j may follow tag i.
    start: (C,), True if a sentence may begin with the tag.
    end: (C,), True if a sentence may end with the tag.
    """

    transitions: Tensor
    start: Tensor
    end: Tensor


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I", "E", "S") or not kind:
        raise ValueError(f"tag must be 'O' or PREFIX-TYPE with PREFIX in B, I, E, S, got {tag!r}")
    return prefix, kind


def allowed_transitions(tags: list[str], scheme: str) -> Allowed:
    """The moves scheme ``scheme`` (``iob1``, ``iob2`` or ``bioes``) allows between ``tags``.

    IOB2: I-x only after B-x or I-x, never first. BIOES: after B-x or I-x only I-x or E-x;
    after O, E-y or S-y only O, B-z or S-z; a sentence starts with O, B or S and ends with
    O, E or S. IOB1 (CoNLL-2003's original files): B-x only right after B-x or I-x (it
    separates two adjacent entities of one type), never first.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    parts = [split_tag(tag) for tag in tags]
    allowed_prefixes = {"iob1": "BIO", "iob2": "BIO", "bioes": "BIOES"}[scheme]
    for tag, (prefix, _) in zip(tags, parts, strict=True):
        if prefix not in allowed_prefixes:
            raise ValueError(f"tag {tag!r} does not belong to scheme {scheme!r}")
    C = len(tags)
    transitions = torch.zeros(C, C, dtype=torch.bool)
    start = torch.zeros(C, dtype=torch.bool)
    end = torch.zeros(C, dtype=torch.bool)
    for j, (to, to_kind) in enumerate(parts):
        start[j] = to in ("O", "B", "S") if scheme != "iob1" else to in ("O", "I")
        end[j] = to in ("O", "E", "S") if scheme == "bioes" else True
        for i, (frm, frm_kind) in enumerate(parts):
            same = frm_kind == to_kind
            if scheme == "iob2":
                ok = to != "I" or (frm in ("B", "I") and same)
            elif scheme == "iob1":
                ok = to != "B" or (frm in ("B", "I") and same)
            elif frm in ("B", "I"):                                  # bioes: inside an entity
                ok = to in ("I", "E") and same
            else:                                                    # bioes: outside
                ok = to in ("O", "B", "S")
            transitions[i, j] = ok
    return Allowed(transitions, start, end)


class Decoded(NamedTuple):
    """Viterbi's answer: ``tags`` (B, T) best tag indices (padding: the last real tag,
    cut them with the lengths), ``paths`` one list per sentence of its own length, and
    ``scores`` (B,) the best path scores s(x, y*)."""

    tags: Tensor
    paths: list[list[int]]
    scores: Tensor


class CRF(nn.Module):
    """Linear-chain CRF: transition, start and end scores, forward algorithm and Viterbi.

    Args:
        num_tags: C.
        allowed: optional ``Allowed`` masks (from ``allowed_transitions``); forbidden
            moves score ``FORBIDDEN`` in the likelihood and in decoding.

    Parameters: ``transitions`` (C, C) [from, to], ``start`` (C,), ``end`` (C,), zeros at
    initialisation (uniform over paths). Masks are buffers, saved with the weights.
    """

    def __init__(self, num_tags: int, allowed: Allowed | None = None) -> None:
        super().__init__()
        if isinstance(num_tags, bool) or not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be a positive int, got {num_tags!r}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        if allowed is None:
            allowed = Allowed(torch.ones(num_tags, num_tags, dtype=torch.bool),
                              torch.ones(num_tags, dtype=torch.bool),
                              torch.ones(num_tags, dtype=torch.bool))
        if tuple(allowed.transitions.shape) != (num_tags, num_tags):
            raise ValueError(f"allowed.transitions must have shape ({num_tags}, {num_tags}), "
                             f"got {tuple(allowed.transitions.shape)}")
        self.register_buffer("allowed_transitions", allowed.transitions.clone())
        self.register_buffer("allowed_start", allowed.start.clone())
        self.register_buffer("allowed_end", allowed.end.clone())

    def scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """(transitions (C, C), start (C,), end (C,)) with forbidden moves at FORBIDDEN."""
        return (self.transitions.masked_fill(~self.allowed_transitions, FORBIDDEN),
                self.start.masked_fill(~self.allowed_start, FORBIDDEN),
                self.end.masked_fill(~self.allowed_end, FORBIDDEN))

    # -- likelihood -----------------------------------------------------------------------

    def path_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """s(x, y) of the given tag paths.

        Args:
            emissions: (B, T, C); tags: (B, T) int64; mask: (B, T) bool, True on real
                tokens, right-padded, every sentence at least one token long.

        Returns: (B,) scores.
        """
        A, start, end = self.scores()
        lengths = mask.sum(1)                                                    # (B,)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)                 # (B, T)
        trans = A[tags[:, :-1], tags[:, 1:]]                                     # (B, T-1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)             # (B,)
        m = mask.to(emissions.dtype)
        return (start[tags[:, 0]] + (emit * m).sum(1)
                + (trans * m[:, 1:]).sum(1) + end[last])

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z(x) by the forward algorithm in log space: (B, T, C), (B, T) -> (B,)."""
        A, start, end = self.scores()
        steps, masks = emissions.unbind(1), mask.unbind(1)  # unbind: indexing is O(T²) backward
        alpha = start + steps[0]                                                 # (B, C)
        for emit_t, m_t in zip(steps[1:], masks[1:], strict=True):              # (B, C), (B,)
            # alpha_t(j) = logsumexp_i(alpha_{t-1}(i) + A[i, j]) + E[t, j]
            nxt = torch.logsumexp(alpha.unsqueeze(2) + A, dim=1) + emit_t        # (B, C)
            alpha = torch.where(m_t.unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + end, dim=1)                               # (B,)

    def neg_log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """-log p(y | x) = log Z(x) - s(x, y), per sentence: (B,)."""
        self._check(emissions, mask, tags)
        return self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)

    # -- decoding -------------------------------------------------------------------------

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor) -> Decoded:
        """Batched Viterbi: the highest-scoring (allowed) tag path of each sentence.

        Args: emissions (B, T, C); mask (B, T) bool, right-padded, lengths >= 1.
        Returns: ``Decoded(tags (B, T), paths, scores (B,))``.
        """
        self._check(emissions, mask)
        A, start, end = self.scores()
        B, T, C = emissions.shape
        steps, masks = emissions.unbind(1), mask.unbind(1)
        identity = torch.arange(C, device=emissions.device).expand(B, C)        # (B, C)
        delta = start + steps[0]                                                 # (B, C)
        pointers = []
        for emit_t, m_t in zip(steps[1:], masks[1:], strict=True):
            best, arg = (delta.unsqueeze(2) + A).max(dim=1)                      # (B, C) each
            keep = m_t.unsqueeze(1)                                              # (B, 1)
            delta = torch.where(keep, best + emit_t, delta)
            pointers.append(torch.where(keep, arg, identity))                    # padding: stay
        score, last = (delta + end).max(dim=1)                                   # (B,)
        path = [last]
        for arg in reversed(pointers):
            last = arg.gather(1, last.unsqueeze(1)).squeeze(1)                   # (B,)
            path.append(last)
        tags = torch.stack(path[::-1], dim=1)                                    # (B, T)
        lengths = mask.sum(1).tolist()
        paths = [row[:n] for row, n in zip(tags.tolist(), lengths, strict=True)]
        return Decoded(tags, paths, score)

    def _check(self, emissions: Tensor, mask: Tensor, tags: Tensor | None = None) -> None:
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must have shape (B, T, C={self.num_tags}), got "
                             f"{tuple(emissions.shape)}")
        if tuple(mask.shape) != tuple(emissions.shape[:2]) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape {tuple(emissions.shape[:2])}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        if emissions.shape[1] == 0 or not bool(mask[:, 0].all()):
            raise ValueError("every sentence must have at least one token (mask[:, 0] all True)")
        if tags is not None and tuple(tags.shape) != tuple(mask.shape):
            raise ValueError(f"tags must have shape {tuple(mask.shape)}, got {tuple(tags.shape)}")

    def extra_repr(self) -> str:
        forbidden = int((~self.allowed_transitions).sum())
        return f"num_tags={self.num_tags}, forbidden_transitions={forbidden}"
