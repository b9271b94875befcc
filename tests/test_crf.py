"""The CRF against brute-force enumeration of every tag path, with padding and constraints."""

import itertools
import math

import pytest
import torch

from recur.crf import CRF, FORBIDDEN, allowed_transitions, split_tag

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC"]


def random_crf(C, allowed=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    crf = CRF(C, allowed).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.double))
    return crf


def brute_force(crf, emissions, length):
    """Every path of one sentence: (log Z, best score, best path)."""
    A, start, end = (s.detach().double() for s in crf.scores())
    scores = {}
    for path in itertools.product(range(crf.num_tags), repeat=length):
        s = start[path[0]] + end[path[-1]]
        s = s + sum(emissions[t, y] for t, y in enumerate(path))
        s = s + sum(A[path[t - 1], path[t]] for t in range(1, length))
        scores[path] = float(s)
    best = max(scores, key=scores.get)
    log_z = math.log(sum(math.exp(v - scores[best]) for v in scores.values())) + scores[best]
    return log_z, scores[best], list(best)


def padded_case(B, T, C, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    emissions = torch.randn(B, T, C, generator=g, dtype=torch.double)
    emissions = emissions.masked_fill(~mask.unsqueeze(2), 123.0)  # garbage in the padding
    return emissions, mask, lengths


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tags", [None, IOB2], ids=["free", "iob2"])
def test_log_partition_and_viterbi_equal_brute_force_with_padding(seed, tags):
    C = 3 if tags is None else len(tags)
    allowed = None if tags is None else allowed_transitions(tags, "iob2")
    crf = random_crf(C, allowed, seed)
    emissions, mask, lengths = padded_case(B=5, T=4, C=C, seed=seed)
    log_z = crf.log_partition(emissions, mask).detach()
    decoded = crf.decode(emissions, mask)
    for b in range(5):
        n = int(lengths[b])
        want_z, want_best, want_path = brute_force(crf, emissions[b, :n], n)
        assert float(log_z[b]) == pytest.approx(want_z, abs=1e-9)
        assert decoded.paths[b] == want_path
        assert float(decoded.scores[b]) == pytest.approx(want_best, abs=1e-9)


def test_path_score_and_likelihood_match_brute_force():
    crf = random_crf(3, seed=4)
    emissions, mask, lengths = padded_case(B=4, T=4, C=3, seed=4)
    tags = torch.randint(0, 3, (4, 4))
    nll = crf.neg_log_likelihood(emissions, tags, mask).detach()
    A, start, end = (s.detach() for s in crf.scores())
    for b in range(4):
        n = int(lengths[b])
        path = tags[b, :n].tolist()
        s = start[path[0]] + end[path[-1]] + sum(emissions[b, t, y] for t, y in enumerate(path))
        s = s + sum(A[path[t - 1], path[t]] for t in range(1, n))
        want_z, _, _ = brute_force(crf, emissions[b, :n], n)
        assert float(nll[b]) == pytest.approx(want_z - float(s), abs=1e-9)
        assert float(nll[b]) > 0


def test_padding_never_changes_a_sentence():
    crf = random_crf(4, seed=5)
    emissions, mask, lengths = padded_case(B=6, T=7, C=4, seed=5)
    tags = torch.randint(0, 4, (6, 7))
    nll = crf.neg_log_likelihood(emissions, tags, mask)
    decoded = crf.decode(emissions, mask)
    for b in range(6):
        n = int(lengths[b])
        alone = crf.neg_log_likelihood(emissions[b:b + 1, :n], tags[b:b + 1, :n],
                                       mask[b:b + 1, :n])
        torch.testing.assert_close(nll[b:b + 1], alone)
        assert crf.decode(emissions[b:b + 1, :n], mask[b:b + 1, :n]).paths[0] == decoded.paths[b]


def valid(tags, path, scheme):
    allowed = allowed_transitions(tags, scheme)
    if not allowed.start[path[0]] or not allowed.end[path[-1]]:
        return False
    return all(allowed.transitions[i, j] for i, j in zip(path, path[1:], strict=False))


@pytest.mark.parametrize("tags, scheme", [(IOB2, "iob2"), (BIOES, "bioes")])
def test_constrained_decoding_never_emits_an_invalid_transition(tags, scheme):
    C = len(tags)
    crf = CRF(C, allowed_transitions(tags, scheme))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # learned scores that prefer invalid moves
        crf.transitions.copy_(5 * torch.randn(C, C, generator=g))
    emissions = 10 * torch.randn(64, 9, C, generator=g)
    lengths = torch.randint(1, 10, (64,), generator=g)
    mask = torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)
    unconstrained = CRF(C)
    unconstrained.transitions.data.copy_(crf.transitions.data)
    invalid_free = sum(not valid(tags, p, scheme) for p in unconstrained.decode(emissions, mask).paths)
    assert invalid_free > 10  # the test can fail: unconstrained decoding does emit invalid paths
    for path in crf.decode(emissions, mask).paths:
        assert valid(tags, path, scheme), [tags[i] for i in path]


def test_scheme_rules_by_hand():
    a = allowed_transitions(IOB2, "iob2")
    ix = {t: i for i, t in enumerate(IOB2)}
    assert a.transitions[ix["B-PER"], ix["I-PER"]] and a.transitions[ix["I-PER"], ix["I-PER"]]
    assert not a.transitions[ix["O"], ix["I-PER"]]
    assert not a.transitions[ix["B-LOC"], ix["I-PER"]]
    assert not a.start[ix["I-LOC"]] and a.start[ix["B-LOC"]] and a.end.all()
    b = allowed_transitions(BIOES, "bioes")
    jx = {t: i for i, t in enumerate(BIOES)}
    assert b.transitions[jx["B-PER"], jx["E-PER"]] and not b.transitions[jx["B-PER"], jx["O"]]
    assert not b.transitions[jx["O"], jx["E-LOC"]] and b.transitions[jx["E-PER"], jx["S-LOC"]]
    assert not b.end[jx["B-PER"]] and b.end[jx["S-LOC"]] and not b.start[jx["E-LOC"]]
    c = allowed_transitions(["O", "I-PER", "B-PER"], "iob1")
    assert c.start[1] and not c.start[2] and c.transitions[1, 2] and not c.transitions[0, 2]


def test_gradients_are_finite_with_constraints():
    crf = CRF(len(IOB2), allowed_transitions(IOB2, "iob2"))
    emissions = torch.randn(3, 5, len(IOB2), requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    tags = torch.tensor([[1, 2, 0, 3, 4], [0, 3, 0, 0, 0], [1, 0, 0, 0, 0]])
    loss = crf.neg_log_likelihood(emissions, tags, mask).mean()
    loss.backward()
    for grad in (emissions.grad, crf.transitions.grad, crf.start.grad, crf.end.grad):
        assert torch.isfinite(grad).all()
    assert crf.transitions.grad[0, 2] == 0  # a forbidden move gets no gradient
    assert float(crf.scores()[0][0, 2].detach()) == FORBIDDEN


def test_gradient_check():
    crf = random_crf(3, seed=7)
    emissions, mask, _ = padded_case(B=3, T=4, C=3, seed=7)
    emissions.requires_grad_(True)
    tags = torch.randint(0, 3, (3, 4))
    assert torch.autograd.gradcheck(lambda e: crf.neg_log_likelihood(e, tags, mask), (emissions,))


def test_bad_input_is_named():
    crf = CRF(3)
    with pytest.raises(ValueError, match="emissions must have shape"):
        crf.decode(torch.randn(2, 4, 5), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one token"):
        crf.decode(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_tags"):
        CRF(0)
    with pytest.raises(ValueError, match="PREFIX-TYPE"):
        split_tag("X-PER")
    with pytest.raises(ValueError, match="does not belong to scheme"):
        allowed_transitions(["O", "E-PER"], "iob2")
