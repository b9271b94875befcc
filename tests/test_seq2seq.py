"""Seq2Seq: the fast decoder equals the step loop, padding is invisible, decoding is sound."""

import pytest
import torch

from recur.models.seq2seq import Seq2Seq, Seq2SeqConfig, max_target_length, reorder_state

V_SRC, V_TGT, BOS, EOS = 13, 12, 10, 11


def make(architecture="luong", cell="gru", **options):
    sizes = {"embed_dim": 8, "encoder_hidden": 6, "decoder_hidden": 10, "dropout": 0.0}
    config = Seq2SeqConfig(V_SRC, V_TGT, BOS, EOS, architecture=architecture, cell=cell,
                           **(sizes | options))
    return Seq2Seq(config).eval()


def batch():
    src = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0], [9, 0, 0, 0]])
    src_lengths = torch.tensor([4, 2, 1])
    tgt_in = torch.tensor([[BOS, 2, 3, 4], [BOS, 5, 0, 0], [BOS, 6, 7, 0]])
    tgt_out = torch.tensor([[2, 3, 4, EOS], [5, EOS, 0, 0], [6, 7, EOS, 0]])
    return src, src_lengths, tgt_in, tgt_out


VARIANTS = [("sutskever", {}), ("cho", {}), ("luong", {}),
            ("luong", {"attention": "dot", "encoder_hidden": 5}),
            ("luong", {"attention": "additive", "cell": "lstm"}),
            ("luong", {"input_feeding": True}), ("bahdanau", {}),
            ("bahdanau", {"attention": "general", "encoder_layers": 2, "decoder_layers": 2})]


@pytest.mark.parametrize(("architecture", "options"), VARIANTS)
def test_parallel_decoder_equals_step_loop(architecture, options):
    model = make(architecture, **options)
    src, lengths, tgt_in, _ = batch()
    out = model(src, lengths, tgt_in)
    readouts, weights = model._decode_loop(tgt_in, model.start(src, lengths), 1.0, None)
    torch.testing.assert_close(out.logits, model.out(readouts))
    if out.weights is not None:
        torch.testing.assert_close(out.weights, weights)
    assert (out.weights is None) == (architecture in ("sutskever", "cho"))


@pytest.mark.parametrize(("architecture", "options"), VARIANTS[:4] + VARIANTS[6:7])
def test_padded_batch_equals_each_sentence_alone(architecture, options):
    model = make(architecture, **options)
    src, lengths, tgt_in, _ = batch()
    out = model(src, lengths, tgt_in)
    for b in range(3):
        n = int(lengths[b])
        alone = model(src[b:b + 1, :n], lengths[b:b + 1], tgt_in[b:b + 1])
        torch.testing.assert_close(out.logits[b:b + 1], alone.logits, atol=1e-5, rtol=1e-5)
        if out.weights is not None:
            assert torch.all(out.weights[b, :, n:] == 0.0)


def test_token_loss_equals_cross_entropy_over_real_tokens():
    model = make("luong")
    src, lengths, tgt_in, tgt_out = batch()
    logits = model(src, lengths, tgt_in).logits
    real = tgt_out != 0
    want = torch.nn.functional.cross_entropy(logits[real], tgt_out[real], label_smoothing=0.1)
    got = model.token_loss(src, lengths, tgt_in, tgt_out, label_smoothing=0.1)
    torch.testing.assert_close(got, want)


def test_teacher_forcing_zero_feeds_the_models_own_tokens():
    model = make("luong")
    src, lengths, tgt_in, _ = batch()
    forced = model(src, lengths, tgt_in).logits
    free = model(src, lengths, tgt_in, teacher_forcing=0.0).logits
    torch.testing.assert_close(free[:, 0], forced[:, 0])  # step 0 always reads bos
    state, tokens = model.start(src, lengths), tgt_in[:, 0]
    for t in range(tgt_in.shape[1]):  # free running: each step reads the previous argmax
        step = model.step(tokens, state)
        torch.testing.assert_close(free[:, t], step.logits)
        state, tokens = step.state, step.logits.argmax(-1)


def test_tied_embeddings_share_one_matrix():
    model = make("luong", tie_embeddings=True)
    assert model.out.weight is model.tgt_embed.weight
    untied = make("luong", tie_embeddings=False)
    assert untied.out.weight is not untied.tgt_embed.weight


def test_greedy_stops_at_eos_and_respects_max_len():
    model = make("bahdanau")
    src, lengths, _, _ = batch()
    with torch.no_grad():
        model.out.bias.fill_(-100.0)
        model.out.bias[EOS] = 100.0  # eos at once
    assert [h.tokens for h in model.greedy(src, lengths, 5)] == [[], [], []]
    with torch.no_grad():
        model.out.bias[EOS] = -100.0
        model.out.bias[4] = 100.0  # never eos
    hyps = model.greedy(src, lengths, torch.tensor([3, 1, 2]))
    assert [h.tokens for h in hyps] == [[4, 4, 4], [4], [4, 4]]
    assert hyps[0].weights.shape == (3, 4) and hyps[2].weights.shape == (2, 1)


def test_reorder_state_picks_rows():
    model = make("luong", input_feeding=True, cell="lstm")
    src, lengths, _, _ = batch()
    state = model.start(src, lengths)
    picked = reorder_state(state, torch.tensor([2, 2, 0]))
    torch.testing.assert_close(picked.rnn[1][:, 0], state.rnn[1][:, 2])
    torch.testing.assert_close(picked.memory.outputs[2], state.memory.outputs[0])
    assert picked.feed.shape == state.feed.shape


def test_max_target_length():
    assert max_target_length(torch.tensor([1, 10]), 1.5).tolist() == [7, 20]
    assert max_target_length(torch.tensor([100]), 2.0, cap=50).tolist() == [50]


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="architecture must be one of"):
        Seq2SeqConfig(10, 10, 8, 9, architecture="transformer")
    with pytest.raises(ValueError, match="input_feeding needs architecture 'luong'"):
        Seq2SeqConfig(10, 10, 8, 9, architecture="bahdanau", input_feeding=True)
    with pytest.raises(ValueError, match="attention must be None for architecture 'cho'"):
        Seq2SeqConfig(10, 10, 8, 9, architecture="cho", attention="dot")
    with pytest.raises(ValueError, match=r"eos_id must be an int in \[0, tgt_vocab_size=10\)"):
        Seq2SeqConfig(10, 10, 8, 10)


@pytest.mark.parametrize(("architecture", "options"), [("luong", {"input_feeding": True}),
                                                      ("bahdanau", {}), ("cho", {})])
def test_beam_size_one_equals_greedy(architecture, options):
    torch.manual_seed(1)
    model = make(architecture, **options)
    src, lengths, _, _ = batch()
    greedy = model.greedy(src, lengths, 6)
    beam = model.beam_search(src, lengths, 6, beam_size=1, length_penalty=0.0)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert b.tokens == g.tokens
        assert b.score == pytest.approx(g.score, abs=1e-4)
        if g.weights is not None:
            torch.testing.assert_close(b.weights, g.weights)


def test_beam_hypotheses_are_sorted_and_score_at_least_greedy():
    torch.manual_seed(2)
    model = make("luong", cell="lstm")
    src, lengths, _, _ = batch()
    greedy = model.greedy(src, lengths, 5)
    beams = model.beam_search(src, lengths, 5, beam_size=4, n_best=3, length_penalty=0.0)
    for g, hyps in zip(greedy, beams, strict=True):
        assert len(hyps) == 3
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        # with no length penalty the best beam is at least as likely as the greedy path
        # (both end with eos within max_len here, or both run to max_len)
        assert scores[0] >= g.score - 1e-4 or len(g.tokens) == 5
        for h in hyps:
            assert BOS not in h.tokens and 0 not in h.tokens and EOS not in h.tokens


def test_summary_table_lists_encoder_decoder_and_attention():
    from recur.summary import summary

    table = summary(make("luong"))
    for name in ("encoder (Recurrent)", "decoder (Recurrent)", "attention (Attention)", "out (Linear)"):
        assert name in table
