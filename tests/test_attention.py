"""Attention: masking, normalisation, and the scores against a loop written from the papers."""

import pytest
import torch

from recur.attention import Attention, masked_softmax


def brute_force(attn: Attention, query, memory, mask):
    """Score every (b, s) pair one at a time, straight from the equations."""
    B, S, _ = memory.shape
    context = torch.zeros(B, memory.shape[2])
    weights = torch.zeros(B, S)
    for b in range(B):
        scores = []
        for s in range(S):
            q, m = query[b], memory[b, s]
            if attn.kind == "additive":
                hidden = torch.tanh(attn.query_proj(q) + attn.memory_proj(m))
                score = attn.v(hidden)[0]
            elif attn.kind == "general":
                score = q @ attn.memory_proj(m)
            else:
                score = q @ m
            scores.append(score if mask[b, s] else torch.tensor(float("-inf")))
        a = torch.softmax(torch.stack(scores), 0)
        weights[b] = a
        context[b] = (a.unsqueeze(1) * memory[b]).sum(0)
    return context, weights


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_padded_positions_get_exactly_zero_weight(kind):
    attn = Attention(kind, 8, 8)
    memory = torch.randn(3, 5, 8)
    lengths = torch.tensor([5, 2, 1])
    mask = torch.arange(5) < lengths.unsqueeze(1)
    memory = memory.masked_fill(~mask.unsqueeze(-1), 1e3)  # padding that would dominate
    context, weights = attn(torch.randn(3, 8), memory, mask)
    assert torch.all(weights[~mask] == 0.0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert weights[2, 0] == 1.0  # one real position takes all the weight
    assert context.abs().max() < 1e3  # the padding vectors never reach the context


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_scores_match_the_equations(kind):
    attn = Attention(kind, 6, 6 if kind == "dot" else 4)
    memory = torch.randn(2, 4, attn.memory_size)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    query = torch.randn(2, 6)
    context, weights = attn(query, memory, mask)
    want_context, want_weights = brute_force(attn, query, memory, mask)
    torch.testing.assert_close(weights, want_weights)
    torch.testing.assert_close(context, want_context)


@pytest.mark.parametrize("kind", ["additive", "general"])
def test_a_sequence_of_queries_equals_one_step_at_a_time(kind):
    attn = Attention(kind, 6, 10)
    memory = torch.randn(2, 7, 10)
    mask = torch.arange(7) < torch.tensor([[7], [3]])
    queries = torch.randn(2, 5, 6)
    context, weights = attn(queries, memory, mask, keys=attn.prepare(memory))
    for t in range(5):
        c, w = attn(queries[:, t], memory, mask)
        torch.testing.assert_close(context[:, t], c)
        torch.testing.assert_close(weights[:, t], w)


def test_masked_softmax_without_mask_is_softmax():
    x = torch.randn(3, 4)
    torch.testing.assert_close(masked_softmax(x, None), torch.softmax(x, -1))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="attention kind must be one of"):
        Attention("cosine", 4, 4)
    with pytest.raises(ValueError, match="dot attention needs query_size == memory_size"):
        Attention("dot", 4, 8)
    with pytest.raises(ValueError, match="query_size"):
        Attention("general", 0, 8)
