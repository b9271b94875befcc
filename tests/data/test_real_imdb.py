"""The shared IMDB training file, read for real (skipped where the datasets are absent)."""

import pytest

from recur.data import (
    BucketBatcher,
    WordTokenizer,
    encode_texts,
    find_dataset,
    read_imdb,
    split_train_valid,
)

IMDB = find_dataset("imdb")
pytestmark = pytest.mark.skipif(
    IMDB is None or not (IMDB / "train.jsonl.gz").is_file(),
    reason="shared IMDB train.jsonl.gz not found under the data root",
)


@pytest.fixture(scope="module")
def imdb():
    return read_imdb()


def test_real_imdb_has_25000_reviews_12500_per_label(imdb):
    assert len(imdb) == 25_000
    assert imdb.label_counts() == [12_500, 12_500]
    assert imdb.label_names == ["negative", "positive"]


def test_real_imdb_reviews_are_cleaned_of_br_tags(imdb):
    assert not any("<br" in text.lower() for text in imdb.texts)
    assert min(len(text) for text in imdb.texts) > 0


def test_real_imdb_small_pipeline_end_to_end(imdb):
    train, valid = split_train_valid(imdb, valid_fraction=0.1, seed=0)
    assert train.label_counts() == [11_250, 11_250] and valid.label_counts() == [1_250, 1_250]
    texts, labels = train.texts[:500], train.labels[:500]  # small: keep the suite fast
    tokenizer = WordTokenizer(max_tokens=1000).fit(texts)
    assert tokenizer.vocab_size == 1000
    sequences = encode_texts(tokenizer, texts, max_length=200)
    batches = list(BucketBatcher(sequences, labels, batch_size=32, shuffle=True, seed=0))
    assert sum(len(b) for b in batches) == 500
    assert max(b.tokens.shape[1] for b in batches) == 200
