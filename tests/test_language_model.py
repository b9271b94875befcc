"""Language model: stream windows, carried-state evaluation, the model's dropouts, codecs."""

import math
import warnings

import pytest
import torch

from recur.data.streams import StreamBatches, TextCodec
from recur.generation import greedy
from recur.models.language_model import (
    LanguageModel,
    LanguageModelConfig,
    embedding_dropout,
    locked_dropout,
)
from recur.tasks.language_model import LanguageModelTask, LMDataConfig, split_text, stream_metrics

# -- stream windows --------------------------------------------------------------------------


@pytest.mark.parametrize("n, B, k", [(50, 3, 4), (51, 4, 5), (20, 1, 7), (9, 4, 1)])
def test_stream_windows_lose_and_repeat_no_token(n, B, k):
    ids = torch.arange(n)
    batches = StreamBatches(ids, B, k, keep_tail=True)
    windows = list(batches)
    assert len(windows) == len(batches)
    targets = []
    rows = [[] for _ in range(B)]
    for w in windows:
        assert torch.equal(w.targets, w.inputs + 1)  # targets are the next tokens
        if w.row is None:
            assert w.inputs.shape[0] == B and w.inputs.shape[1] <= k
            for b in range(B):
                rows[b] += w.inputs[b].tolist()
        targets += w.targets.flatten().tolist()
    assert sorted(targets) == list(range(1, n))  # every target exactly once
    steps = (n - 1) // B
    for b in range(B):  # row b is one contiguous piece, continued window after window
        assert rows[b] == list(range(b * steps, (b + 1) * steps))
    assert batches.num_targets == n - 1


def test_stream_windows_without_tail_drop_only_the_leftover():
    batches = StreamBatches(torch.arange(50), 3, 4)
    targets = sorted(t for w in batches for t in w.targets.flatten().tolist())
    assert targets == list(range(1, 49))  # (50 - 1) mod 3 = 1 token left over


def test_stream_windows_offset_moves_the_edges():
    windows = list(StreamBatches(torch.arange(40), 2, 5, offset=3))
    assert windows[0].inputs[0].tolist() == [3, 4, 5, 6, 7]


def test_stream_windows_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        StreamBatches(torch.arange(10), 0, 4)
    with pytest.raises(ValueError, match="at least batch_size \\+ 1 = 11 tokens, got 10"):
        StreamBatches(torch.arange(10), 10, 4)


def test_split_text_cuts_at_a_line_break_near_the_fraction():
    text = "".join(f"line {i:03d}\n" for i in range(100))  # 900 chars
    train, valid = split_text(text, 0.1)
    assert train + valid == text
    assert train.endswith("\n") and abs(len(valid) - 90) <= 9


# -- the model -------------------------------------------------------------------------------


def tiny_model(**options) -> LanguageModel:
    config = {"vocab_size": 11, "embed_dim": 6, "hidden_size": 8, "num_layers": 2} | options
    return LanguageModel(LanguageModelConfig(**config)).eval()


def test_carried_state_evaluation_equals_one_long_forward_pass():
    model = tiny_model()
    ids = torch.randint(11, (301,))
    task = LanguageModelTask(ids, ids, TextCodec("char", _chars(11)), LMDataConfig(), model.config)
    windows = StreamBatches(ids, 1, 16, keep_tail=True)
    got = stream_metrics(task, model, windows, "char")
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
        expected = float(model.loss(logits, ids[None, 1:]))
    assert got["loss"] == pytest.approx(expected, rel=1e-5)
    assert got["tokens"] == 300
    assert got["perplexity"] == pytest.approx(math.exp(expected), rel=1e-5)


def test_parallel_row_evaluation_equals_each_row_read_whole():
    model = tiny_model(cell="gru", num_layers=1)
    ids = torch.randint(11, (103,))  # B = 4: rows of 25 steps, 2 leftover tokens
    task = LanguageModelTask(ids, ids, TextCodec("char", _chars(11)), LMDataConfig(), model.config)
    got = stream_metrics(task, model, StreamBatches(ids, 4, 7, keep_tail=True), "char")
    total = 0.0
    with torch.no_grad():
        for b in range(4):  # the last row continues into the leftover tokens
            end = (b + 1) * 25 + (2 if b == 3 else 0)
            logits, _ = model(ids[None, b * 25:end])
            total += float(model.loss(logits, ids[None, b * 25 + 1:end + 1])) * (end - b * 25)
    assert got["loss"] == pytest.approx(total / 102, rel=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman", "mingru"])
def test_step_by_step_equals_the_whole_sequence(cell):
    model = tiny_model(cell=cell)
    tokens = torch.randint(11, (3, 9))
    with torch.no_grad():
        logits, final = model(tokens)
        state = None
        for t in range(9):
            log_probs, state = model.step(tokens[:, t], state)
            torch.testing.assert_close(log_probs, logits[:, t].log_softmax(-1), atol=1e-5, rtol=1e-5)
    for a, b in zip(state, final, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert a.shape == (2, 3, 8)  # (L, B, H)


def test_tied_weights_share_one_matrix_and_project_when_sizes_differ():
    model = tiny_model(tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    assert model.projection is not None and model.projection.weight.shape == (6, 8)
    same = tiny_model(tie_weights=True, embed_dim=8)
    assert same.projection is None
    untied = sum(p.numel() for p in tiny_model(embed_dim=8).parameters())
    tied = sum(p.numel() for p in same.parameters())
    assert tied == untied - 11 * 8  # one V x E matrix fewer


def test_weight_drop_keeps_the_fused_kernel_the_weights_and_is_off_in_eval():
    plain, dropped = tiny_model(), tiny_model(weight_drop=0.5)
    assert all(rnn.use_fused for rnn in dropped.layers)
    assert dropped.state_dict().keys() == plain.state_dict().keys()  # checkpoints interchange
    plain.load_state_dict(dropped.state_dict())
    tokens = torch.randint(11, (2, 5))
    with torch.no_grad():
        torch.testing.assert_close(dropped(tokens).logits, plain(tokens).logits)
        dropped.train()
        assert not torch.allclose(dropped(tokens).logits, plain(tokens).logits)


def test_weight_drop_zeroes_recurrent_weights_once_per_window_and_trains_the_original():
    model = tiny_model(weight_drop=0.5, num_layers=1).train()
    rnn = model.layers[0]
    seen = []
    original = rnn.forward

    def spy(x, state=None):  # what W_hh the layer runs with
        seen.append(rnn.cells[0].weight_hh.detach().clone())
        return original(x, state)

    rnn.forward = spy
    model(torch.randint(11, (2, 6))).logits.sum().backward()
    assert len(seen) == 1  # one mask for the whole window
    zeroed = seen[0] == 0
    assert zeroed.float().mean() > 0.3
    weight = rnn.cells[0].weight_hh
    torch.testing.assert_close(seen[0][~zeroed], 2 * weight.detach()[~zeroed])
    assert weight.grad is not None and (weight.grad[zeroed] == 0).all()
    assert weight.grad[~zeroed].abs().sum() > 0


def test_locked_dropout_uses_one_mask_for_every_time_step():
    x = torch.ones(4, 10, 16)
    y = locked_dropout(x, 0.5, training=True)
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)


def test_embedding_dropout_drops_whole_words():
    embed = torch.nn.Embedding(5, 3)
    tokens = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3, 4]])
    torch.manual_seed(3)
    out = embedding_dropout(embed, tokens, 0.5, training=True)
    zero = (out == 0).all(-1)[0]
    assert torch.equal(zero[:5], zero[5:])  # a dropped word is dropped at every occurrence
    kept = ~zero[:5]
    torch.testing.assert_close(out[0, :5][kept], embed.weight[kept] * 2)


def test_bad_model_config():
    with pytest.raises(ValueError, match="output_dropout must be a number in \\[0, 1\\), got 1.0"):
        LanguageModelConfig(vocab_size=5, output_dropout=1.0)
    with pytest.raises(ValueError, match="weight_drop needs a cell with recurrent weights"):
        tiny_model(cell="mingru", weight_drop=0.2)
    with pytest.raises(ValueError, match="tokens must be a \\(B, T\\) integer tensor"):
        tiny_model()(torch.zeros(3, 4))


def test_beam_of_one_on_the_lm_equals_greedy():
    from recur.generation import beam_search, select_rows

    model = tiny_model()
    with torch.no_grad():
        by_beam = beam_search(model.step, None, torch.tensor([[1, 2, 3]]), eos=0, beam_size=1,
                              max_len=15, length_penalty=0.0, reorder_state=select_rows(1))
        by_greedy = greedy(model.step, None, torch.tensor([[1, 2, 3]]), max_len=15, eos=0)
    assert by_beam[0][0].tokens == by_greedy[0]


# -- codecs ----------------------------------------------------------------------------------


def _chars(n):
    from recur.data.streams import CharVocab

    return CharVocab([chr(ord("a") + i) for i in range(n)])


def test_char_codec_round_trip_and_unknown_characters():
    codec = TextCodec.fit("char", "hello world\n")
    ids = codec.encode_stream("hello\nworld")
    assert codec.decode(ids.tolist()) == "hello\nworld"
    assert codec.vocab_size == len(set("hello world\n"))
    with pytest.raises(ValueError, match="prompt holds characters this model never saw: 'az'"):
        codec.encode_prompt("haze")


def test_word_codec_adds_eos_per_line_and_keeps_unk():
    text = " the cat sat <unk> \n the dog sat \n"
    codec = TextCodec.fit("word", text)
    ids = codec.encode_stream(text).tolist()
    words = [codec.token_text(i) for i in ids]
    assert words == ["the", "cat", "sat", "<unk>", "<eos>", "the", "dog", "sat", "<eos>"]
    assert codec.decode(ids) == "the cat sat <unk>\nthe dog sat\n"
    with pytest.warns(UserWarning, match="outside the vocabulary, read as '<unk>': zebra"):
        prompt = codec.encode_prompt("the zebra")
    assert [codec.token_text(i) for i in prompt] == ["the", "<unk>"]


def test_bpe_codec_round_trip(tmp_path):
    text = "the quick brown fox jumps over the lazy dog\n" * 30 + "a fox and a dog\n" * 30
    codec = TextCodec.fit("bpe", text, max_tokens=60)
    ids = codec.encode_stream("the lazy fox\nthe dog\n").tolist()
    assert ids.count(codec.eos_id) == 2
    assert codec.decode(ids) == "the lazy fox\nthe dog\n"
    codec.save(tmp_path)
    again = TextCodec.load("bpe", tmp_path)
    assert again.encode_stream("a lazy dog").tolist() == codec.encode_stream("a lazy dog").tolist()


def test_prompt_warning_is_not_raised_for_known_words():
    codec = TextCodec.fit("word", "a b c\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(codec.encode_prompt("a b\nc")) == 4  # a b <eos> c
