"""Readers of labelled text: formats, label validation, encoding errors, cleaning, splits."""

import gzip
import json

import pytest

from recur.data import (
    LabelledTexts,
    clean_text,
    read_aclimdb,
    read_csv,
    read_jsonl,
    read_labelled,
    split_train_valid,
)


def write_aclimdb(root, split="train", pos=("Great film!", "Loved it"), neg=("Awful.",)):
    for name, texts in (("pos", pos), ("neg", neg)):
        folder = root / split / name
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            # ids 0, 1, ..., 10: numeric order differs from file-name order
            (folder / f"{i * 10 if i else 0}_{9 if name == 'pos' else 2}.txt").write_text(
                text, encoding="utf-8"
            )
    return root


def write_jsonl(path, records, compress=False):
    data = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# ----------------------------------------------------------------------------- aclImdb


def test_aclimdb_reads_negatives_then_positives_in_id_order(tmp_path):
    root = write_aclimdb(tmp_path / "aclImdb", pos=("p0", "p10", "p20"), neg=("n0",))
    (root / "train" / "pos" / "2_8.txt").write_text("p2")  # id 2 sorts before id 10
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    data = read_aclimdb(root)
    assert data.texts == ["n0", "p0", "p2", "p10", "p20"]
    assert data.labels == [0, 1, 1, 1, 1]
    assert data.label_names == ["negative", "positive"]


def test_aclimdb_accepts_the_split_folder_itself(tmp_path):
    root = write_aclimdb(tmp_path / "aclImdb", split="test")
    assert read_aclimdb(root, split="test").texts == read_aclimdb(root / "test").texts


def test_aclimdb_missing_layout_names_what_is_missing(tmp_path):
    (tmp_path / "train" / "pos").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="missing neg"):
        read_aclimdb(tmp_path)


def test_aclimdb_without_reviews_is_an_error(tmp_path):
    for name in ("pos", "neg"):
        (tmp_path / "train" / name).mkdir(parents=True)
    with pytest.raises(ValueError, match="no reviews"):
        read_aclimdb(tmp_path)


# ----------------------------------------------------------------------------- JSONL


@pytest.mark.parametrize("compress", [False, True])
def test_jsonl_reads_plain_and_gzipped(tmp_path, compress):
    name = "train.jsonl.gz" if compress else "train.jsonl"
    records = [{"text": "Bad<br /><br />movie", "label": 0, "id": 3}, {"text": "Good", "label": 1}]
    path = write_jsonl(tmp_path / name, records, compress)
    data = read_jsonl(path)
    assert data.texts == ["Bad movie", "Good"]
    assert data.labels == [0, 1]
    assert data.label_names == ["0", "1"]


def test_jsonl_custom_keys_string_labels_and_blank_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"review": "a", "sentiment": "Positive"}\n\n{"review": "b", "sentiment": "neg"}\n'
    )
    data = read_jsonl(path, text_key="review", label_key="sentiment")
    assert data.labels == [1, 0]
    assert data.label_names == ["negative", "positive"]


def test_json_array_file_is_read_too(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": "x", "label": 1}, {"text": "y", "label": 0}]))
    assert read_labelled(path).labels == [1, 0]


def test_unknown_label_names_value_file_and_line(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": "meh"}]
    )
    with pytest.raises(ValueError, match=r"unknown label 'meh' at .*d\.jsonl, line 2"):
        read_jsonl(path)


@pytest.mark.parametrize("label", [True, 1.5, None, [1]])
def test_non_int_non_string_labels_are_rejected(tmp_path, label):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": label}])
    with pytest.raises(ValueError, match=r"line 1 is not a class id"):
        read_jsonl(path)


def test_negative_label_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": -1}])
    with pytest.raises(ValueError, match="negative"):
        read_jsonl(path)


def test_label_out_of_range_of_label_names(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 2}])
    with pytest.raises(ValueError, match="out of range"):
        read_jsonl(path, label_names=["neg", "pos"])


def test_custom_label_map_names_the_classes(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": "a", "label": "spam"}, {"text": "b", "label": "ham"}]
    )
    data = read_jsonl(path, label_map={"ham": 0, "spam": 1})
    assert data.labels == [1, 0]
    assert data.label_names == ["ham", "spam"]


def test_missing_key_names_the_key_and_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 0}, {"body": "b", "label": 1}])
    with pytest.raises(ValueError, match=r"line 2: no key 'text'"):
        read_jsonl(path)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 0}\n{"text": \n')
    with pytest.raises(ValueError, match=r"line 2: invalid JSON"):
        read_jsonl(path)


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok", "label": 0}\n{"text": "caf\xe9", "label": 1}\n')
    with pytest.raises(ValueError, match=r"latin1\.jsonl, line 2.*0xe9 is not valid UTF-8"):
        read_jsonl(path)


def test_non_utf8_in_aclimdb_file_names_the_file(tmp_path):
    root = write_aclimdb(tmp_path)
    bad = root / "train" / "neg" / "7_1.txt"
    bad.write_bytes(b"first line\nsecond \xff line")
    with pytest.raises(ValueError, match=r"7_1\.txt, line 2"):
        read_aclimdb(root)


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(ValueError, match="no labelled examples"):
        read_jsonl(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_labelled(tmp_path / "nope.jsonl")


# ----------------------------------------------------------------------------- CSV


def test_csv_autodetects_imdb_review_sentiment_columns(tmp_path):
    path = tmp_path / "IMDB Dataset.csv"
    path.write_text(
        "review,sentiment\n"
        '"One of the best.<br /><br />Really, ""great"".",positive\n'
        '"Multi\nline, bad",negative\n'
        "Meh,NEGATIVE\n",
        encoding="utf-8",
    )
    data = read_labelled(path)
    assert data.texts == ['One of the best. Really, "great".', "Multi line, bad", "Meh"]
    assert data.labels == [1, 0, 0]
    assert data.label_names == ["negative", "positive"]


def test_tsv_with_digit_labels_and_bom(tmp_path):
    path = tmp_path / "sst.tsv.gz"
    path.write_bytes(gzip.compress("\ufeffsentence\tlabel\nfine\t1\nbad\t0\n".encode()))
    data = read_labelled(path)
    assert data.texts == ["fine", "bad"]
    assert data.labels == [1, 0]


def test_csv_explicit_columns_by_name_and_index(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,body,y\n1,hello,pos\n2,bye,neg\n")
    assert read_csv(path, text_column="body", label_column="y").labels == [1, 0]
    assert read_csv(path, text_column=1, label_column=2).texts == ["hello", "bye"]


def test_csv_unknown_label_names_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,positive\nb,neutral\n")
    with pytest.raises(ValueError, match=r"unknown label 'neutral' at .*d\.csv, line 3"):
        read_csv(path)


def test_csv_without_recognisable_columns_asks_for_them(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\nx,1\n")
    with pytest.raises(ValueError, match=r"cannot find the text column.*text_column="):
        read_csv(path)


def test_csv_row_with_wrong_field_count_names_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,1\nb,1,extra\n")
    with pytest.raises(ValueError, match=r"line 3: expected 2 fields"):
        read_csv(path)


def test_csv_non_utf8_names_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\nok,1\nna\xefve,0\n")
    with pytest.raises(ValueError, match=r"d\.csv, line 3"):
        read_csv(path)


def test_csv_header_only_is_empty_dataset(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("review,sentiment\n")
    with pytest.raises(ValueError, match="no labelled examples"):
        read_csv(path)


def test_read_labelled_rejects_unknown_extensions(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_labelled(path)


def test_read_labelled_dispatches_folders_to_aclimdb(tmp_path):
    root = write_aclimdb(tmp_path / "aclImdb")
    assert read_labelled(root).labels == [0, 1, 1]


# ----------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Great.<br /><br />Loved it", "Great. Loved it"),
        ("a<br/>b<BR>c<br >d", "a b c d"),
        ("  tabs\tand\nnewlines\u00a0too  ", "tabs and newlines too"),
        ("<b>bold</b> stays", "<b>bold</b> stays"),
        ("   ", ""),
        ("", ""),
    ],
)
def test_clean_text_removes_br_markup_and_normalises_whitespace(raw, clean):
    assert clean_text(raw) == clean
    assert clean_text(clean) == clean  # idempotent


def test_empty_texts_are_kept_not_dropped(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"text": "a", "label": 0}, {"text": "  <br /> ", "label": 1}, {"text": "c", "label": 0}],
    )
    data = read_jsonl(path)
    assert data.texts == ["a", "", "c"]  # positions still line up with the input rows
    assert read_jsonl(path, clean=False).texts[1] == "  <br /> "


# ----------------------------------------------------------------------------- splits


def make_data(n_neg=30, n_pos=10):
    texts = [f"t{i}" for i in range(n_neg + n_pos)]
    return LabelledTexts(texts, [0] * n_neg + [1] * n_pos, ["negative", "positive"])


def test_split_is_stratified_disjoint_and_complete():
    data = make_data()
    train, valid = split_train_valid(data, valid_fraction=0.2, seed=3)
    assert valid.label_counts() == [6, 2]
    assert train.label_counts() == [24, 8]
    assert sorted(train.texts + valid.texts) == sorted(data.texts)
    assert train.label_names == valid.label_names == data.label_names


def test_split_is_deterministic_for_a_seed_and_varies_with_it():
    data = make_data()
    first = split_train_valid(data, seed=1)
    assert split_train_valid(data, seed=1) == first
    assert split_train_valid(data, seed=2)[1].texts != first[1].texts


def test_split_shuffles_label_sorted_input():
    train, _ = split_train_valid(make_data(), seed=0)
    assert train.labels != sorted(train.labels)


def test_split_keeps_every_class_in_train():
    data = LabelledTexts(["a", "b", "c"], [0, 0, 1], ["x", "y"])
    train, valid = split_train_valid(data, valid_fraction=0.5)
    assert train.label_counts() == [1, 1] and valid.label_counts() == [1, 0]


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="valid_fraction"):
        split_train_valid(make_data(), valid_fraction=fraction)


def test_labelled_texts_checks_its_invariants():
    with pytest.raises(ValueError, match="same length"):
        LabelledTexts(["a"], [0, 1], ["x", "y"])
    with pytest.raises(ValueError, match="range"):
        LabelledTexts(["a"], [2], ["x", "y"])
