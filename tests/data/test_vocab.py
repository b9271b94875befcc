"""Tokenizers: Keras TextVectorization equivalence, max_tokens, saving, subword models."""

import json

import pytest
import torch

from recur.data import (
    SubwordTokenizer,
    Tokenizer,
    WordTokenizer,
    keras_split,
    keras_standardize,
    load_tokenizer,
    make_tokenizer,
)
from recur.data.vocab import HEADER_FILE

# ----------------------------------------------------------------------------- Keras parity

# Expected values computed by hand from Keras 3's TextVectorization source:
# tf.strings.lower (ASCII only by default), then removing the 32 characters of
# string.punctuation, then tf.strings.split (ASCII whitespace).
KERAS_CASES = [
    ("Hello, World! It's GREAT.", ["hello", "world", "its", "great"]),
    ("e-mail me: user@example.com", ["email", "me", "userexamplecom"]),
    ("Ça VA? Éclair", ["Ça", "va", "Éclair"]),  # non-ASCII letters keep their case
    ("“quoted” — dash", ["“quoted”", "—", "dash"]),  # Unicode punctuation is kept
    ("no\u00a0break  tab\there\n\nnew", ["no\u00a0break", "tab", "here", "new"]),
    ("good<br />bad", ["goodbr", "bad"]),  # Keras itself does not strip <br />
    ("... !!! ???", []),
    ("", []),
]


@pytest.mark.parametrize(("text", "words"), KERAS_CASES)
def test_standardize_and_split_match_keras_by_hand(text, words):
    assert keras_split(keras_standardize(text)) == words
    assert WordTokenizer(strip_html=False).split(text) == words


def test_standardize_modes():
    assert keras_standardize("A.b", "lower") == "a.b"
    assert keras_standardize("A.b", "strip_punctuation") == "Ab"
    assert keras_standardize("A.b", None) == "A.b"
    with pytest.raises(ValueError, match="standardize must be one of"):
        keras_standardize("x", "upper")


def test_strip_html_removes_br_before_standardising():
    assert WordTokenizer().split("Good.<br /><br />Bad") == ["good", "bad"]


def test_vocabulary_orders_by_count_then_descending_token_like_keras():
    # counts: a 2, b 2, c 1, d 1; Keras: np.lexsort((tokens, counts))[::-1]
    tok = WordTokenizer().fit(["b a c", "a b", "d"])
    assert tok.vocabulary == ["", "[UNK]", "b", "a", "d", "c"]


def test_vocabulary_does_not_depend_on_text_order():
    texts = ["the cat sat", "on the mat", "the dog", "a cat"]
    assert WordTokenizer().fit(texts).vocabulary == WordTokenizer().fit(texts[::-1]).vocabulary


def test_max_tokens_counts_pad_and_oov_like_keras():
    tok = WordTokenizer(max_tokens=4).fit(["b a c", "a b", "d"])
    assert tok.vocabulary == ["", "[UNK]", "b", "a"]
    assert tok.vocab_size == 4
    assert tok.encode("a d zzz b") == [3, 1, 1, 2]


def test_max_tokens_1000_gives_vocab_size_1000():
    texts = [" ".join(f"w{j}" for j in range(i % 1500)) for i in range(1, 1501)]
    tok = WordTokenizer(max_tokens=1000).fit(texts)
    assert tok.vocab_size == 1000
    assert tok.vocabulary[:3] == ["", "[UNK]", "w0"]


def test_small_corpus_gives_fewer_than_max_tokens():
    assert WordTokenizer(max_tokens=1000).fit(["a b c"]).vocab_size == 5


def test_min_freq_drops_rare_words():
    tok = WordTokenizer(min_freq=2).fit(["b a c", "a b", "d"])
    assert tok.vocabulary == ["", "[UNK]", "b", "a"]


def test_output_sequence_length_pads_and_truncates_like_keras():
    tok = WordTokenizer(output_sequence_length=3).fit(["b a c", "a b", "d"])
    assert tok.encode("a") == [3, 0, 0]
    assert tok.encode("a b c d") == [3, 2, 5]
    assert tok.encode("") == [0, 0, 0]


def test_empty_text_encodes_to_no_tokens():
    tok = WordTokenizer().fit(["a b"])
    assert tok.encode("") == [] and tok.encode(" <br /> ?! ") == []


def test_against_tensorflow_if_installed():
    tf = pytest.importorskip("tensorflow")
    corpus = [text for text, _ in KERAS_CASES] + ["the the a b", "b a", "Hello hello"]
    layer = tf.keras.layers.TextVectorization(max_tokens=8)
    layer.adapt(corpus)
    tok = WordTokenizer(max_tokens=8, strip_html=False).fit(corpus)
    assert tok.vocabulary == layer.get_vocabulary()
    for text in corpus:
        expected = layer(tf.constant([text])).numpy()[0].tolist()
        ids = tok.encode(text)
        assert ids == expected[: len(ids)] and not any(expected[len(ids) :])


def test_decode_skips_padding_and_checks_ids():
    tok = WordTokenizer().fit(["b a c"])
    assert tok.decode(torch.tensor([2, 3, 1, 0, 0])) == "c b [UNK]"
    with pytest.raises(ValueError, match=r"range\(5\)"):
        tok.decode([7])


def test_fit_rejects_no_texts_and_no_words():
    with pytest.raises(ValueError, match="at least one text"):
        WordTokenizer().fit([])
    with pytest.raises(ValueError, match="no words"):
        WordTokenizer().fit(["", "!!!"])


def test_unfitted_tokenizer_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        WordTokenizer().encode("x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 1}, "max_tokens must be an int >= 2, got 1"),
        ({"min_freq": 0}, "min_freq"),
        ({"output_sequence_length": 0}, "output_sequence_length"),
        ({"standardize": "lower_only"}, "standardize"),
    ],
)
def test_bad_settings_are_rejected_with_the_argument_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WordTokenizer(**kwargs)


# ----------------------------------------------------------------------------- saving


def test_word_vocabulary_json_round_trip():
    tok = WordTokenizer(max_tokens=50, min_freq=1, output_sequence_length=7).fit(
        ["Ünïcode wörds", "the cat", "the dog"]
    )
    back = WordTokenizer.from_json(tok.to_json())
    assert back.vocabulary == tok.vocabulary
    assert back.config == tok.config
    assert back.encode("the Ünïcode cat") == tok.encode("the Ünïcode cat")


def test_word_tokenizer_save_and_load_pick_the_class_from_the_header(tmp_path):
    tok = WordTokenizer(max_tokens=10).fit(["a b c", "a"])
    tok.save(tmp_path)
    header = json.loads((tmp_path / HEADER_FILE).read_text())
    assert header["kind"] == "word" and header["file"] == "vocab.json"
    json.loads((tmp_path / "vocab.json").read_text())  # plain JSON, nothing pickled
    back = load_tokenizer(tmp_path)
    assert isinstance(back, WordTokenizer)
    assert back.vocabulary == tok.vocabulary
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "not a recur word vocabulary"),
        (lambda d: d.update(version=9), "unsupported version"),
        (lambda d: d["vocabulary"].__setitem__(0, "x"), "must start with"),
        (lambda d: d["vocabulary"].append("a"), "repeated tokens"),
        (lambda d: d["config"].update(colour="red"), "unknown config keys"),
    ],
)
def test_from_json_rejects_damaged_documents(mutate, message):
    data = json.loads(WordTokenizer().fit(["a b"]).to_json())
    mutate(data)
    with pytest.raises(ValueError, match=message):
        WordTokenizer.from_json(json.dumps(data))


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=HEADER_FILE):
        load_tokenizer(tmp_path)
    (tmp_path / HEADER_FILE).write_text(
        json.dumps({"format": "recur-tokenizer", "version": 1, "kind": "sentencepiece"})
    )
    with pytest.raises(ValueError, match="unknown tokenizer kind 'sentencepiece'"):
        load_tokenizer(tmp_path)


# ----------------------------------------------------------------------------- subwords

WORDS = "the movie was great awful acting plot boring brilliant story actors film".split()
CORPUS = [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(8)) + "." for i in range(120)]


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_subword_tokenizer_fits_encodes_and_decodes(kind):
    tok = SubwordTokenizer(kind=kind, vocab_size=120, min_freq=1).fit(CORPUS)
    assert tok.pad_id == 0 and tok.unk_id == 1
    assert tok.id_to_token(0) == "[PAD]" and tok.id_to_token(1) == "[UNK]"
    assert 20 < tok.vocab_size <= 120
    ids = tok.encode("The MOVIE was<br />great")
    assert all(2 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == "the movie was great"
    assert tok.encode("") == []
    assert tok.encode_batch(["the plot", "boring film"]) == [
        tok.encode("the plot"),
        tok.encode("boring film"),
    ]


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_subword_tokenizer_round_trips_through_its_folder(tmp_path, kind):
    tok = SubwordTokenizer(kind=kind, vocab_size=100, min_freq=1, lowercase=False).fit(CORPUS)
    tok.save(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    back = load_tokenizer(tmp_path)
    assert isinstance(back, SubwordTokenizer)
    assert back.config == tok.config
    text = "The acting was brilliant, the story xyzzy"
    assert back.encode(text) == tok.encode(text)
    assert back.vocab_size == tok.vocab_size


@pytest.mark.parametrize("cls", [WordTokenizer, SubwordTokenizer])
def test_both_tokenizers_implement_the_protocol(cls):
    members = [m for m in vars(Tokenizer) if not m.startswith("_")] + ["kind"]
    missing = [m for m in members if not hasattr(cls, m)]
    assert not missing


def test_make_tokenizer_builds_each_kind():
    assert isinstance(make_tokenizer("word", max_tokens=10), WordTokenizer)
    assert make_tokenizer("wordpiece", vocab_size=50).kind == "wordpiece"
    with pytest.raises(ValueError, match="tokenizer kind must be one of"):
        make_tokenizer("char")


def test_subword_settings_are_checked():
    with pytest.raises(ValueError, match="kind must be one of"):
        SubwordTokenizer(kind="unigram")
    with pytest.raises(ValueError, match="vocab_size"):
        SubwordTokenizer(vocab_size=2)
