"""Data for recur's applications: readers, tokenizers, batching and downloads.

The path of a text-classification example through this package::

    files (aclImdb/, .jsonl(.gz), .csv/.tsv)                       text.py
        -> LabelledTexts(texts, labels, label_names), split_train_valid
    -> WordTokenizer (Keras TextVectorization) | SubwordTokenizer   vocab.py
        -> token ids per text, saved as vocab.json / tokenizer.json
    -> encode_and_truncate, BucketBatcher                           batching.py
        -> Batch(tokens (B, T), lengths (B,), labels (B,), index (B,))

``paths.py`` decides where datasets live; ``download.py`` fetches the ones that are not
there.
"""

from recur.data.batching import (
    TRUNCATION_POLICIES,
    Batch,
    BucketBatcher,
    encode_and_truncate,
    encode_texts,
    make_batches,
    restore_order,
)
from recur.data.download import (
    DATASETS,
    ChecksumError,
    DownloadError,
    RemoteDataset,
    download,
    download_dataset,
    extract,
    sha256_file,
)
from recur.data.paths import data_root, dataset_folders, download_root, find_dataset
from recur.data.text import (
    DEFAULT_LABEL_MAP,
    SENTIMENT_LABEL_NAMES,
    LabelledTexts,
    clean_text,
    read_aclimdb,
    read_csv,
    read_imdb,
    read_jsonl,
    read_labelled,
    split_train_valid,
)
from recur.data.vocab import (
    OOV_TOKEN,
    PAD_TOKEN,
    SubwordTokenizer,
    SubwordTokenizerConfig,
    Tokenizer,
    WordTokenizer,
    WordTokenizerConfig,
    keras_split,
    keras_standardize,
    load_tokenizer,
    make_tokenizer,
)

__all__ = [
    # paths
    "data_root",
    "dataset_folders",
    "download_root",
    "find_dataset",
    # readers
    "DEFAULT_LABEL_MAP",
    "SENTIMENT_LABEL_NAMES",
    "LabelledTexts",
    "clean_text",
    "read_aclimdb",
    "read_csv",
    "read_imdb",
    "read_jsonl",
    "read_labelled",
    "split_train_valid",
    # tokenizers
    "OOV_TOKEN",
    "PAD_TOKEN",
    "SubwordTokenizer",
    "SubwordTokenizerConfig",
    "Tokenizer",
    "WordTokenizer",
    "WordTokenizerConfig",
    "keras_split",
    "keras_standardize",
    "load_tokenizer",
    "make_tokenizer",
    # batching
    "TRUNCATION_POLICIES",
    "Batch",
    "BucketBatcher",
    "encode_and_truncate",
    "encode_texts",
    "make_batches",
    "restore_order",
    # downloads
    "DATASETS",
    "ChecksumError",
    "DownloadError",
    "RemoteDataset",
    "download",
    "download_dataset",
    "extract",
    "sha256_file",
]
