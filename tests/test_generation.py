"""Decoders against oracles: brute-force enumeration, greedy, hand-computed filters."""

import itertools

import pytest
import torch

from recur.generation import (
    beam_search,
    filter_logits,
    greedy,
    next_token,
    sample,
    select_rows,
    stream_text,
)

V, H = 4, 5  # vocabulary (token 0 is eos) and hidden size of the toy model
EOS = 0


class ToyRNN:
    """A tiny random Elman RNN: the next-token distribution depends on the whole history."""

    def __init__(self, seed: int = 0, extra: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        self.embed = torch.randn(V, H, generator=g)
        self.W = torch.randn(H, H, generator=g) * 0.8
        self.out = torch.randn(H, V, generator=g) * 1.5
        self.extra = extra
        self.calls = 0

    def step(self, tokens, state):
        self.calls += 1
        h = torch.zeros(len(tokens), H) if state is None else state
        h = torch.tanh(self.embed[tokens] + h @ self.W)                     # (N, H)
        log_probs = (h @ self.out).log_softmax(-1)                          # (N, V)
        return (log_probs, h, h * 2) if self.extra else (log_probs, h)

    def sequence_log_prob(self, start: int, seq: list[int]) -> float:
        state, token, total = None, torch.tensor([start]), 0.0
        for t in seq:
            log_probs, state = self.step(token, state)[:2]
            total += float(log_probs[0, t])
            token = torch.tensor([t])
        return total


def brute_force(model: ToyRNN, start: int, max_len: int, length_penalty: float):
    """Every possible output (ends at eos, or has max_len tokens), scored, best first."""
    found = []
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=n):
            if EOS in seq[:-1] or (n < max_len and seq[-1] != EOS):
                continue
            lp = model.sequence_log_prob(start, list(seq))
            found.append((list(seq), lp / n ** length_penalty if length_penalty else lp))
    return sorted(found, key=lambda x: -x[1])


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_exhaustive_beam_equals_brute_force(length_penalty):
    model, max_len = ToyRNN(seed=1), 3
    starts = torch.tensor([1, 2])
    result = beam_search(model.step, None, starts, reorder_state=select_rows(0), eos=EOS,
                         beam_size=V ** max_len, max_len=max_len,
                         length_penalty=length_penalty, n_best=5)
    for b, start in enumerate(starts.tolist()):
        oracle = brute_force(model, start, max_len, length_penalty)[:5]
        assert [h.tokens for h in result[b]] == [seq for seq, _ in oracle]
        for hyp, (_, score) in zip(result[b], oracle, strict=True):
            assert hyp.score == pytest.approx(score, abs=1e-5)


def test_beam_one_equals_greedy():
    model = ToyRNN(seed=2)
    starts = torch.tensor([1, 2, 3])
    by_beam = beam_search(model.step, None, starts, reorder_state=select_rows(0), eos=EOS,
                          beam_size=1, max_len=12, length_penalty=0.0)
    by_greedy = greedy(model.step, None, starts, max_len=12, eos=EOS)
    assert [r[0].tokens for r in by_beam] == by_greedy


def test_wider_beam_never_scores_worse_than_greedy():
    model = ToyRNN(seed=3)
    one = beam_search(model.step, None, 1, batch_size=1, reorder_state=select_rows(0), eos=EOS,
                      beam_size=1, max_len=6, length_penalty=0.0)[0][0]
    five = beam_search(model.step, None, 1, batch_size=1, reorder_state=select_rows(0),
                       eos=EOS, beam_size=5, max_len=6, length_penalty=0.0)[0][0]
    assert five.score >= one.score - 1e-6


def test_beam_extras_follow_the_chosen_path():
    model = ToyRNN(seed=4, extra=True)
    hyps = beam_search(model.step, None, torch.tensor([2]), reorder_state=select_rows(0),
                       eos=EOS, beam_size=3, max_len=5, n_best=3)[0]
    for hyp in hyps:
        state, token, expected = None, torch.tensor([2]), []
        for t in hyp.tokens:
            _, state, extra = model.step(token, state)
            expected.append(extra[0])
            token = torch.tensor([t])
        assert hyp.extras.shape == (len(hyp.tokens), H)
        torch.testing.assert_close(hyp.extras, torch.stack(expected))
        assert hyp.log_prob == pytest.approx(model.sequence_log_prob(2, hyp.tokens), abs=1e-5)


def test_beam_prefix_equals_primed_state():
    model = ToyRNN(seed=5)
    prefix = torch.tensor([[3, 1, 2]])
    with_prefix = beam_search(model.step, None, prefix, reorder_state=select_rows(0), eos=EOS,
                              beam_size=3, max_len=4)
    _, state = model.step(torch.tensor([3]), None)
    _, state = model.step(torch.tensor([1]), state)
    primed = beam_search(model.step, state, torch.tensor([2]), reorder_state=select_rows(0),
                         eos=EOS, beam_size=3, max_len=4)
    assert with_prefix[0][0].tokens == primed[0][0].tokens


def test_beam_without_eos_runs_to_max_len():
    model = ToyRNN(seed=6)
    hyps = beam_search(model.step, None, 1, batch_size=2, reorder_state=select_rows(0),
                       beam_size=2, max_len=4, n_best=2)
    assert all(len(h.tokens) == 4 for row in hyps for h in row)


def test_beam_bad_arguments():
    model = ToyRNN()
    with pytest.raises(ValueError, match="n_best must be <= beam_size"):
        beam_search(model.step, None, 1, batch_size=1, reorder_state=select_rows(0),
                    beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="beam_size must be a positive int, got 0"):
        beam_search(model.step, None, 1, batch_size=1, reorder_state=select_rows(0), beam_size=0)
    with pytest.raises(ValueError, match="batch_size is needed"):
        beam_search(model.step, None, 1, reorder_state=select_rows(0))


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = filter_logits(logits, top_k=2).isfinite()
    assert kept.tolist() == [[False, True, False, True, False]]


def test_top_p_keeps_the_token_that_crosses_p():
    probs = torch.tensor([[0.1, 0.5, 0.25, 0.15]])
    logits = probs.log()
    # sorted: 0.5, 0.25 (cum 0.75), 0.15 (cum 0.9), 0.1
    assert filter_logits(logits, top_p=0.5).isfinite().tolist() == [[False, True, False, False]]
    assert filter_logits(logits, top_p=0.6).isfinite().tolist() == [[False, True, True, False]]
    assert filter_logits(logits, top_p=0.8).isfinite().tolist() == [[False, True, True, True]]
    assert filter_logits(logits, top_p=1.0).isfinite().all()


def test_filtered_tokens_are_never_sampled():
    logits = torch.tensor([[0.0, 0.1, 0.2, 5.0, 0.3]]).repeat(200, 1)
    g = torch.Generator().manual_seed(0)
    drawn = next_token(logits, temperature=5.0, top_k=2, generator=g)
    assert set(drawn.tolist()) == {3, 4}


def test_sampling_is_reproducible_with_a_seed():
    model = ToyRNN(seed=7)

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.stack(list(sample(model.step, None, torch.tensor([1, 2]),
                                       max_new_tokens=30, temperature=1.3, generator=g)))

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_sampling_streams_one_step_per_token():
    model = ToyRNN(seed=8)
    stream = sample(model.step, None, 1, batch_size=1, max_new_tokens=50)
    next(stream)
    assert model.calls == 1  # nothing computed ahead of what was asked
    next(stream)
    assert model.calls == 2


def test_sampling_stops_when_every_row_ended():
    model = ToyRNN(seed=9)
    g = torch.Generator().manual_seed(0)
    steps = list(sample(model.step, None, 1, batch_size=3, max_new_tokens=500,
                        temperature=2.0, eos=EOS, generator=g))
    assert len(steps) < 500
    assert (steps[-1] == EOS).all()
    for row in torch.stack(steps).T.tolist():  # after eos, a row only repeats eos
        first = row.index(EOS)
        assert set(row[first:]) == {EOS}


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": -0.1}, "temperature must be a number >= 0"),
    ({"top_k": 0}, "top_k must be an int >= 1"),
    ({"top_p": 0.0}, r"top_p must be a number in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be a number in \(0, 1\]"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive int, got 0"),
])
def test_sampling_bad_arguments(kwargs, message):
    model = ToyRNN()
    args = {"max_new_tokens": 5} | kwargs
    with pytest.raises(ValueError, match=message):
        next(sample(model.step, None, 1, batch_size=1, **args))


def test_temperature_zero_is_greedy():
    model = ToyRNN(seed=10)
    drawn = [int(t) for t in sample(model.step, None, 2, batch_size=1, max_new_tokens=8,
                                    temperature=0.0)]
    assert drawn == greedy(model.step, None, 2, batch_size=1, max_len=8)[0]


def test_stream_text_stops_before_the_stop_string():
    chars = "abcdefghij"
    decode = lambda ids: "".join(chars[i] for i in ids)  # noqa: E731
    pieces = list(stream_text([0, 1, 2, 3, 4, 5], decode, stop=["de"]))
    assert "".join(pieces) == "abc"
    # a partial match is held back, then released when it turns out not to be the stop
    pieces = list(stream_text([0, 3, 0, 3, 4], decode, stop=["dx"]))
    assert "".join(pieces) == "adade"
    assert all(not p.endswith("d") for p in pieces[:-1])


def test_stream_text_without_stop_yields_everything():
    decode = lambda ids: "".join(str(i) for i in ids)  # noqa: E731
    assert "".join(stream_text(iter([1, 2, 3]), decode)) == "123"


def test_unlikely_short_hypotheses_do_not_end_the_search():
    # After the start: token 1 (p 0.96) or 2 / 3 (0.02 each); 2 and 3 are always followed by
    # eos; 1 is followed by 1 three times, then eos. The best output is 1 1 1 1 eos, but
    # the short "2 eos", "3 eos" finish first: stopping after K finished would miss it.
    def step(tokens, state):
        t = torch.zeros(len(tokens), dtype=torch.long) if state is None else state + 1
        probs = torch.full((len(tokens), V), 1e-9)
        for row, (token, time) in enumerate(zip(tokens.tolist(), t.tolist(), strict=True)):
            if token in (2, 3) or time >= 4:
                probs[row, EOS] = 1.0
            else:
                probs[row, 1:] = torch.tensor([0.96, 0.02, 0.02])
        return probs.log(), t

    best = beam_search(step, None, 1, batch_size=1, reorder_state=select_rows(0), eos=EOS,
                       beam_size=2, max_len=10, length_penalty=0.0)[0][0]
    assert best.tokens == [1, 1, 1, 1, EOS]
