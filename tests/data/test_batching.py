"""Batching: truncation policies, padding and lengths, bucketing, input-order restoration."""

import numpy as np
import pytest
import torch

from recur.data import (
    BucketBatcher,
    WordTokenizer,
    encode_and_truncate,
    encode_texts,
    make_batches,
    restore_order,
)


def random_sequences(n=257, seed=0, max_len=60):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 100, size=rng.integers(0, max_len)).tolist() for _ in range(n)]


# ----------------------------------------------------------------------------- truncation

IDS = list(range(10))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("head", [0, 1, 2, 3]),
        ("tail", [6, 7, 8, 9]),
        ("head+tail", [0, 7, 8, 9]),  # round(4 * 0.25) = 1 from the head, 3 from the tail
    ],
)
def test_truncation_policies(policy, expected):
    assert encode_and_truncate(IDS, 4, policy) == expected


def test_head_plus_tail_uses_head_fraction():
    assert encode_and_truncate(IDS, 4, "head+tail", head_fraction=0.5) == [0, 1, 8, 9]


@pytest.mark.parametrize("policy", ["head", "tail", "head+tail"])
def test_short_sequences_are_not_truncated(policy):
    assert encode_and_truncate([5, 6], 4, policy) == [5, 6]
    assert encode_and_truncate([], 4, policy) == []


def test_truncation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_length must be a positive int, got 0"):
        encode_and_truncate(IDS, 0)
    with pytest.raises(ValueError, match="policy must be one of"):
        encode_and_truncate(IDS, 3, "middle")


def test_encode_texts_truncates_every_text():
    tok = WordTokenizer().fit(["a b c d e", "a"])
    assert encode_texts(tok, ["a b c d e", "e"], max_length=2, policy="tail") == [
        tok.encode("d e"),
        tok.encode("e"),
    ]


# ----------------------------------------------------------------------------- batches


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("bucket", [False, True])
def test_every_item_appears_exactly_once(shuffle, bucket):
    sequences = random_sequences()
    batches = list(make_batches(sequences, None, 16, shuffle=shuffle, seed=1, bucket=bucket))
    seen = torch.cat([b.index for b in batches]).sort().values
    assert torch.equal(seen, torch.arange(len(sequences)))
    assert [len(b) for b in batches].count(16) == len(batches) - 1  # only the last is short


def test_padding_and_lengths_are_correct():
    sequences = random_sequences(n=50)
    for batch in make_batches(sequences, batch_size=8, shuffle=True, seed=0):
        assert batch.tokens.dtype == batch.lengths.dtype == batch.index.dtype == torch.int64
        assert batch.tokens.shape == (len(batch), int(batch.lengths.max()))
        for row, i in enumerate(batch.index.tolist()):
            n = len(sequences[i])
            assert batch.lengths[row] == max(n, 1)
            assert batch.tokens[row, :n].tolist() == sequences[i]
            assert (batch.tokens[row, n:] == 0).all()  # right padding with pad_id


def test_custom_pad_id_is_used_for_padding():
    batch = next(make_batches([[5, 6, 7], [8]], batch_size=2, pad_id=3))
    assert batch.tokens.tolist() == [[5, 6, 7], [8, 3, 3]]


def test_empty_sequence_becomes_one_pad_token_of_length_one():
    batch = next(make_batches([[], [4, 5]], [0, 1], batch_size=2, pad_id=0))
    assert batch.lengths.tolist() == [2, 1]
    assert batch.tokens.tolist() == [[4, 5], [0, 0]]
    assert batch.index.tolist() == [1, 0]


def test_lengths_are_sorted_descending_within_each_batch():
    for batch in make_batches(random_sequences(), batch_size=10, shuffle=True, bucket=False):
        assert torch.equal(batch.lengths, batch.lengths.sort(descending=True).values)


def test_bucketing_cuts_padding():
    sequences = random_sequences(n=2000, max_len=400)

    def padded(bucket):
        batches = make_batches(sequences, batch_size=32, shuffle=True, seed=0, bucket=bucket)
        return sum(b.tokens.numel() for b in batches)

    assert padded(bucket=True) < 0.7 * padded(bucket=False)


def test_labels_follow_their_examples():
    sequences = random_sequences(n=40)
    labels = list(range(40))
    for batch in make_batches(sequences, labels, batch_size=7, shuffle=True, seed=5):
        assert batch.labels.dtype == torch.int64
        assert torch.equal(batch.labels, batch.index)


def test_float_labels_become_float_tensors():
    batch = next(make_batches([[1], [2]], [0.5, 1.5], batch_size=2))
    assert batch.labels.dtype == torch.float32


def test_same_seed_same_batches_and_epochs_differ():
    sequences = random_sequences()

    def indices(batcher):
        return [b.index.tolist() for b in batcher]

    first = BucketBatcher(sequences, batch_size=16, shuffle=True, seed=7)
    second = BucketBatcher(sequences, batch_size=16, shuffle=True, seed=7)
    epoch0 = indices(first)
    assert indices(second) == epoch0
    assert indices(first) != epoch0  # the second pass is epoch 1
    first.set_epoch(0)
    assert indices(first) == epoch0  # replayable
    other = BucketBatcher(sequences, batch_size=16, shuffle=True, seed=8)
    assert indices(other) != epoch0


def test_drop_last_and_len():
    batcher = BucketBatcher(random_sequences(n=50), batch_size=16, drop_last=True)
    assert len(batcher) == 3 == len(list(batcher))
    assert len(BucketBatcher(random_sequences(n=50), batch_size=16)) == 4


def test_batcher_rejects_bad_input():
    with pytest.raises(ValueError, match="one value per sequence"):
        BucketBatcher([[1], [2]], [0])
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        BucketBatcher([[1]], batch_size=0)
    with pytest.raises(ValueError, match="negative token id"):
        BucketBatcher([[1, -2]])
    with pytest.raises(ValueError, match="int token ids"):
        BucketBatcher([[1.5]])
    with pytest.raises(ValueError, match="empty"):
        BucketBatcher([])


def test_batch_to_moves_tokens_and_labels():
    batch = next(make_batches([[1, 2]], [1], batch_size=1)).to("cpu")
    assert batch.tokens.device.type == "cpu" and batch.lengths.device.type == "cpu"


# ----------------------------------------------------------------------------- order


def test_restore_order_returns_predictions_in_input_order():
    sequences = random_sequences(n=100)
    batches = list(make_batches(sequences, batch_size=9, shuffle=True, seed=2))
    # a "model" whose output identifies the example: its length and first token
    outputs = [torch.stack([b.lengths.float(), b.tokens[:, 0].float()], dim=1) for b in batches]
    restored = restore_order(outputs, [b.index for b in batches])
    expected = torch.tensor(
        [[max(len(s), 1), s[0] if s else 0] for s in sequences], dtype=torch.float32
    )
    assert torch.equal(restored, expected)


def test_restore_order_on_python_lists():
    assert restore_order(["c", "a", "b"], torch.tensor([2, 0, 1])) == ["a", "b", "c"]


def test_restore_order_rejects_an_index_that_is_not_a_permutation():
    with pytest.raises(ValueError, match="permutation"):
        restore_order(torch.zeros(3), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="same length"):
        restore_order(torch.zeros(2), torch.tensor([0, 1, 2]))
