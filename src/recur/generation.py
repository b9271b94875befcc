"""Decoding: greedy, sampling (temperature, top-k, top-p) and beam search, for any model.

One implementation shared by the language model, the translator, the CLI and the server.
Every decoder drives the model through one function, ``step``::

    step(tokens, state) -> (log_probs, state)            or
    step(tokens, state) -> (log_probs, state, extra)

    tokens     (N,) int64     the token fed at this time step, one per row
    log_probs  (N, V)         next-token log-probabilities (logits are accepted too:
                              every decoder applies log_softmax, which leaves
                              log-probabilities unchanged)
    state      anything       the model's carried state (an LSTM's (h, c), an encoder's
                              outputs...); decoders never look inside it
    extra      (N, ...)       optional per-step output kept along the chosen path
                              (attention weights, say); beam search reorders it with
                              the beams and returns it with each hypothesis

So a model is advanced one token at a time with its state carried (O(1) work per token).
Beam search runs B inputs × K beams as one batch of N = B·K rows, and calls
``reorder_state(state, index)`` to pick rows ``index`` (N,) of the state along its batch
dimension after each step (``select_rows(dim)`` builds one for states whose tensors all
have the batch on dimension ``dim``: 1 for a Recurrent's (L, B, H) state).

Prompts: decoders start from ``start``, the token fed at the first step: an int (with
``batch_size``), a (B,) tensor, or a (B, P) prefix, whose first P - 1 tokens are fed to
``step`` before decoding begins (their outputs discarded). Returned tokens never include
the prefix.

Example (a language model ``lm`` with ``lm.step(tokens, state)``)::

    for token in sample(lm.step, None, start=bos, batch_size=1, max_new_tokens=100,
                        temperature=0.8, top_k=40, generator=torch.Generator().manual_seed(0)):
        print(vocab[int(token)], end="")
    best = beam_search(lm.step, None, start=bos, batch_size=1, eos=eos, beam_size=5,
                       max_len=20, reorder_state=select_rows(1))[0][0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from recur.training.tbptt import map_tensors

StepFn = Callable[[Tensor, Any], tuple]
ReorderFn = Callable[[Any, Tensor], Any]


# -- argument checks ----------------------------------------------------------------------------


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Clear errors for bad sampling settings (temperature < 0, k < 1, p outside (0, 1])."""
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1 or None, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, int | float)
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] or None, got {top_p!r}")


def _check_length(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _split_step(result: tuple, *, where: str = "step") -> tuple[Tensor, Any, Tensor | None]:
    """(log_probs, state, extra or None) from what ``step`` returned."""
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise TypeError(f"{where} must return (log_probs, state) or (log_probs, state, extra), "
                        f"got {type(result).__name__}")
    log_probs, state, extra = (*result, None) if len(result) == 2 else result
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 2:
        got = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs).__name__
        raise ValueError(f"{where} must return log_probs of shape (N, V), got {got}")
    return log_probs, state, extra


def _start_tokens(start: int | Tensor, batch_size: int | None) -> Tensor:
    """``start`` as a (B, P) int64 tensor, P >= 1."""
    if isinstance(start, int) and not isinstance(start, bool):
        if batch_size is None:
            raise ValueError("batch_size is needed when start is a single int token")
        _check_length("batch_size", batch_size)
        return torch.full((batch_size, 1), start, dtype=torch.long)
    if not isinstance(start, Tensor) or start.dim() not in (1, 2) or start.is_floating_point() \
            or start.numel() == 0:
        got = tuple(start.shape) if isinstance(start, Tensor) else repr(start)
        raise ValueError(f"start must be an int, a (B,) or a non-empty (B, P) integer tensor, "
                         f"got {got}")
    start = start.long()
    if start.dim() == 1:
        start = start.unsqueeze(1)
    if batch_size is not None and batch_size != start.shape[0]:
        raise ValueError(f"batch_size {batch_size} does not match start's {start.shape[0]} rows")
    return start


def _prime(step: StepFn, state: Any, start: Tensor) -> tuple[Tensor, Any]:
    """Feed all prefix tokens but the last; return (the last ones (B,), state)."""
    for t in range(start.shape[1] - 1):
        _, state, _ = _split_step(step(start[:, t], state))
    return start[:, -1], state


def select_rows(dim: int = 0) -> ReorderFn:
    """A ``reorder_state`` that index-selects every tensor in the state along ``dim``.

    Use ``dim=1`` for a Recurrent state ((L, B, H) tensors) and ``dim=0`` for batch-first
    tensors such as encoder outputs (B, S, H). None entries stay None. States mixing both
    layouts need their own function.
    """
    def reorder(state: Any, index: Tensor) -> Any:
        return map_tensors(lambda t: t.index_select(dim, index.to(t.device)), state)

    return reorder


# -- filtering and sampling ---------------------------------------------------------------------


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``logits`` (N, V) with the tokens outside the top-k / nucleus set to -inf.

    top_k: keep the k most likely tokens of each row (ties at the k-th value are kept).
    top_p: keep the smallest set of most likely tokens whose probability reaches p (the
        token that crosses p is kept; so is the most likely one, always).
    Both given: top-k first, then top-p over what is left (as HF transformers).
    """
    check_sampling(1.0, top_k, top_p)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]                   # (N, 1)
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)         # (N, V)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs        # probability of the more likely tokens
        drop_sorted = before >= top_p            # the set already reached p without them
        drop = drop_sorted.scatter(-1, order, drop_sorted)                  # (N, V)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def next_token(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """One token per row of ``logits`` (N, V): argmax if ``temperature`` is 0, else a draw
    from softmax(logits / temperature) restricted to the top-k / top-p set. Returns (N,)."""
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = logits.softmax(-1)                                              # (N, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def sample(step: StepFn, state: Any, start: int | Tensor, *, max_new_tokens: int,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None, eos: int | None = None,
           batch_size: int | None = None) -> Iterator[Tensor]:
    """Generate token by token, yielding each new (B,) token tensor as soon as it is drawn.

    ``temperature=0`` is greedy decoding. Stops after ``max_new_tokens`` tokens, or once
    every row has produced ``eos`` (rows that finished early keep yielding ``eos``). Give a
    seeded ``generator`` for reproducible samples. The state after the last token is not
    kept (use ``step`` directly to continue a stream).
    """
    check_sampling(temperature, top_k, top_p)
    _check_length("max_new_tokens", max_new_tokens)
    tokens, state = _prime(step, state, _start_tokens(start, batch_size))
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool)
    for _ in range(max_new_tokens):
        log_probs, state, _ = _split_step(step(tokens, state))
        tokens = next_token(log_probs, temperature, top_k, top_p, generator)  # (B,)
        if eos is not None:
            tokens = tokens.masked_fill(finished.to(tokens.device), eos)
            finished |= (tokens == eos).cpu()
        yield tokens
        if eos is not None and bool(finished.all()):
            return


def greedy(step: StepFn, state: Any, start: int | Tensor, *, max_len: int,
           eos: int | None = None, batch_size: int | None = None) -> list[list[int]]:
    """The most likely token at every step: one token list per row, ending at ``eos``
    (included) or after ``max_len`` tokens."""
    rows = _start_tokens(start, batch_size).shape[0]
    out: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    for tokens in sample(step, state, start, max_new_tokens=max_len, temperature=0.0, eos=eos,
                         batch_size=batch_size):
        for b, token in enumerate(tokens.tolist()):
            if not done[b]:
                out[b].append(token)
                done[b] = token == eos
    return out


# -- beam search --------------------------------------------------------------------------------


class Hypothesis(NamedTuple):
    """One finished beam.

    tokens: the generated tokens (prefix excluded), ending with ``eos`` unless the beam
        ran to ``max_len``.
    score: ``log_prob / len(tokens) ** length_penalty``, what the beams are ranked by.
    log_prob: the sum of the tokens' log-probabilities.
    extras: the stacked per-step extras along this path, (len(tokens), ...), or None.
    """

    tokens: list[int]
    score: float
    log_prob: float
    extras: Tensor | None = None


def beam_search(step: StepFn, state: Any, start: int | Tensor, *, reorder_state: ReorderFn,
                eos: int | None = None, beam_size: int = 4, max_len: int = 50,
                length_penalty: float = 1.0, n_best: int = 1,
                batch_size: int | None = None) -> list[list[Hypothesis]]:
    """Batched beam search: the ``n_best`` highest-scoring continuations of each input.

    Args:
        step: ``step(tokens (N,), state) -> (log_probs (N, V), state[, extra (N, ...)])``.
        state: the state for the B inputs (batch dimension B), or None if ``step`` makes
            its own; it is expanded to B·K rows with ``reorder_state``.
        start: the first token(s) to feed: int (needs ``batch_size``), (B,) or a (B, P)
            prefix.
        reorder_state: ``reorder_state(state, index (N,)) -> state`` picking rows.
        eos: the end token; a beam that emits it is finished (None: all run to max_len).
        beam_size: K, beams kept per input.
        max_len: the most tokens generated per hypothesis (eos included).
        length_penalty: alpha in ``score = log_prob / length ** alpha`` (0: raw sum; 1: mean
            log-probability per token, which favours longer outputs than 0).
        n_best: hypotheses returned per input, 1 <= n_best <= beam_size.

    Returns:
        For each input, its ``n_best`` Hypothesis, best first.

    Search rule: each step ranks the 2K best (beam, token) extensions; an ``eos`` among
    the top K finishes that hypothesis (as fairseq), and the K best non-eos extensions
    stay alive. An input is done once ``n_best`` hypotheses are finished and no live beam
    can still beat them (its log-probability can only fall; the length penalty's most
    favourable length bounds the rest) — not after K finished ones, which lets unlikely
    short hypotheses end the search before a likely long one finishes. At ``max_len`` the
    live beams are finished as they are. With K = 1 and ``length_penalty`` 0 this is greedy
    decoding; with K at least the number of possible sequences it is exhaustive search.
    """
    _check_length("beam_size", beam_size)
    _check_length("max_len", max_len)
    _check_length("n_best", n_best)
    if n_best > beam_size:
        raise ValueError(f"n_best must be <= beam_size = {beam_size}, got {n_best}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, int | float) \
            or not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")
    if not callable(reorder_state):
        raise TypeError(f"reorder_state must be callable(state, index) -> state, "
                        f"got {reorder_state!r}")

    first, state = _prime(step, state, _start_tokens(start, batch_size))   # (B,)
    B, K = first.shape[0], beam_size
    expand = torch.arange(B).repeat_interleave(K)                          # (B·K,)
    if state is not None:
        state = reorder_state(state, expand)
    tokens = first[expand]                                                  # (B·K,)
    # Only beam 0 of each input is alive at first: K copies would give K equal beams.
    scores = torch.full((B, K), -math.inf)
    scores[:, 0] = 0.0
    history = torch.zeros(B * K, 0, dtype=torch.long)                       # (B·K, t)
    extras: Tensor | None = None                                            # (B·K, t, ...)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = [False] * B

    def final(score: float, length: int) -> float:
        return score / length ** length_penalty if length_penalty else score

    def cannot_improve(hyps: list[Hypothesis], best_live: float, t: int) -> bool:
        """True once n_best hypotheses are finished and no live beam can beat the n_best-th:
        log-probabilities only fall, so a beam's best final score is its current one
        under the most favourable length in (t, max_len]."""
        if best_live == -math.inf:
            return True
        if len(hyps) < n_best:
            return False
        nth = sorted((h.score for h in hyps), reverse=True)[n_best - 1]
        bound = max(final(best_live, min(t + 1, max_len)), final(best_live, max_len))
        return bound <= nth

    for t in range(1, max_len + 1):
        log_probs, state, extra = _split_step(step(tokens, state))
        log_probs = log_probs.float().log_softmax(-1).cpu()                # (B·K, V)
        V = log_probs.shape[1]
        candidates = (scores.unsqueeze(-1) + log_probs.view(B, K, V)).view(B, K * V)
        top_scores, top_index = candidates.topk(min(2 * K, K * V), dim=1)  # (B, 2K)
        beam_of, token_of = top_index // V, top_index % V
        new_rows, new_tokens, new_scores = [], [], []
        for b in range(B):
            keep_rows, keep_tokens, keep_scores = [], [], []
            for rank in range(top_scores.shape[1]):
                score = float(top_scores[b, rank])
                row = b * K + int(beam_of[b, rank])
                token = int(token_of[b, rank])
                if score == -math.inf:
                    break
                if eos is not None and token == eos:
                    if rank < K and not done[b]:
                        path = extras[row] if extras is not None else None
                        if extra is not None:
                            step_extra = extra[row].detach().cpu().unsqueeze(0)
                            path = step_extra if path is None else torch.cat([path, step_extra])
                        finished[b].append(Hypothesis(history[row].tolist() + [token],
                                                      final(score, t), score, path))
                    continue
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score)
                if len(keep_rows) == K:
                    break
            while len(keep_rows) < K:  # fewer live extensions than beams: dead placeholders
                keep_rows.append(b * K)
                keep_tokens.append(eos if eos is not None else 0)
                keep_scores.append(-math.inf)
            done[b] = done[b] or cannot_improve(finished[b], max(keep_scores), t)
            new_rows += keep_rows
            new_tokens += keep_tokens
            new_scores.append(keep_scores)
        index = torch.tensor(new_rows)                                      # (B·K,)
        tokens = torch.tensor(new_tokens)                                   # (B·K,)
        scores = torch.tensor(new_scores)                                   # (B, K)
        history = torch.cat([history[index], tokens.unsqueeze(1)], dim=1)  # (B·K, t)
        if extra is not None:
            step_extra = extra.detach().cpu()[index].unsqueeze(1)           # (B·K, 1, ...)
            extras = step_extra if extras is None else torch.cat([extras[index], step_extra], 1)
        if all(done):
            break
        state = reorder_state(state, index.to(first.device)) if state is not None else None
        tokens = tokens.to(first.device)
    else:  # max_len reached: the live beams finish as they are
        for b in range(B):
            if done[b]:
                continue
            for k in range(K):
                score = float(scores[b, k])
                if score > -math.inf:
                    row = b * K + k
                    path = extras[row] if extras is not None else None
                    finished[b].append(Hypothesis(history[row].tolist(),
                                                  final(score, max_len), score, path))
    return [sorted(hyps, key=lambda h: -h.score)[:n_best] for hyps in finished]


# -- text streaming with stop strings -----------------------------------------------------------


def stream_text(tokens: Iterable[int], decode: Callable[[Sequence[int]], str],
                stop: Sequence[str] = ()) -> Iterator[str]:
    """Turn a stream of token ids into a stream of text pieces, ending at a stop string.

    ``decode(ids)`` decodes a whole id list (subword decoders are not piecewise). Text
    that could still be the start of a stop string is held back until it cannot; the
    stop string and everything after it are never yielded.
    """
    stop = [s for s in stop if s]
    ids: list[int] = []
    sent = 0  # characters already yielded
    for token in tokens:
        ids.append(int(token))
        text = decode(ids)
        hits = [text.find(s, sent) for s in stop]
        hits = [h for h in hits if h >= 0]
        if hits:
            end = min(hits)
            if end > sent:
                yield text[sent:end]
            return
        safe = len(text)
        for s in stop:  # hold back a tail that is a prefix of a stop string
            for n in range(min(len(s) - 1, len(text) - sent), 0, -1):
                if text.endswith(s[:n]):
                    safe = min(safe, len(text) - n)
                    break
        if safe > sent:
            yield text[sent:safe]
            sent = safe
    text = decode(ids) if ids else ""
    if len(text) > sent:
        yield text[sent:]
