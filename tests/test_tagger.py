"""SequenceTagger, the tagger task and its CLI verbs, on a small generated CoNLL corpus."""

import json
import random

import pytest
import torch

from recur.cli import main
from recur.crf import allowed_transitions
from recur.data.conll import read_conll
from recur.models.tagger import SequenceTagger, TaggerConfig
from recur.tasks.tagger import (
    NERModel,
    TaggerBatcher,
    TaggerDataConfig,
    TaggerVocab,
    casing,
    encode,
    read_vectors,
    split_text,
)

PEOPLE = ["John Smith", "Mary Jones", "Peter Blackburn", "Anna", "Li Wei", "Carlos Diaz"]
PLACES = ["Paris", "New York", "Brussels", "Tokyo", "Lagos", "Lima"]
ORGS = ["Acme Corp", "the European Union", "Reuters", "FC Porto"]
TEMPLATES = ["{PER} visited {LOC} .", "{PER} works for {ORG} in {LOC} .",
             "{ORG} said on Monday that {PER} left .", "In {LOC} , {PER} met {PER} ."]


def sentence(rng):
    rows = []
    for word in rng.choice(TEMPLATES).split():
        if word.startswith("{"):
            kind = word[1:4]
            name = rng.choice({"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS}[kind]).split()
            for token in name:
                tag = "O" if token == "the" else f"I-{kind}"  # IOB1, as CoNLL-2003
                rows.append(f"{token} NNP I-NP {tag}")
        else:
            rows.append(f"{word} XX O O")
    return "\n".join(rows)


def corpus(path, n, seed):
    rng = random.Random(seed)
    path.write_text("-DOCSTART- -X- O O\n\n" + "\n\n".join(sentence(rng) for _ in range(n)) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conll")
    return corpus(folder / "train.txt", 240, 0), corpus(folder / "valid.txt", 60, 1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    train, valid = data
    out = tmp_path_factory.mktemp("run") / "ner"
    torch.manual_seed(0)
    code = main(["train", "tagger", "--train", str(train), "--valid", str(valid), "--out",
                 str(out), "--preset", "small", "--epochs", "6", "--quiet"])
    assert code == 0
    return out


def small_model(vocab, **options):
    config = TaggerConfig(num_words=len(vocab.words), num_chars=len(vocab.chars),
                          tags=tuple(vocab.tags), word_dim=8, char_dim=4, char_hidden=3,
                          casing_dim=2, hidden_size=6, dropout=0.0, **options)
    return SequenceTagger(config).eval()


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn", "none"])
@pytest.mark.parametrize("head", ["crf", "softmax"])
def test_padded_batch_equals_each_sentence_alone(data, char_encoder, head):
    c = read_conll(data[0])
    vocab = TaggerVocab.build(c.tokens(), c.tags(), TaggerDataConfig())
    model = small_model(vocab, char_encoder=char_encoder, head=head)
    encoded = encode(vocab, c.tokens()[:12], c.tags()[:12])
    batch = next(iter(TaggerBatcher(vocab, encoded, 12, shuffle=False, bucket=False)))
    assert int(batch.lengths.min()) < int(batch.lengths.max())  # really padded
    emissions = model(batch)
    paths = model.decode(batch)
    for row, i in enumerate(batch.index.tolist()):
        alone = next(iter(TaggerBatcher(vocab, [encoded[i]], 1, shuffle=False)))
        n = len(encoded[i].words)
        torch.testing.assert_close(model(alone)[0], emissions[row, :n])
        assert model.decode(alone)[0] == paths[row]
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_trained_tagger_finds_the_entities(trained, data):
    metrics = NERModel.load(trained).evaluate(data[1])
    assert metrics["f1"] > 0.9, metrics
    config = json.loads((trained / "best" / "config.json").read_text())
    assert config["task"] == "tagger"


def test_decoded_tags_respect_the_scheme(trained, data):
    model = NERModel.load(trained)
    allowed = allowed_transitions(model.vocab.tags, "iob2")
    ids = model.vocab.tag_ids
    sentences = read_conll(data[1]).tokens() + [["Paris"] * 50, ["the", "of", "John"]]
    for tags in model.tag(sentences):
        path = [ids[t] for t in tags]
        assert allowed.start[path[0]]
        assert all(allowed.transitions[i, j] for i, j in zip(path, path[1:], strict=False))


def test_cli_evaluate_json_and_text(trained, data, capsys):
    assert main(["evaluate", str(trained), "--data", str(data[1]), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"f1", "precision", "recall", "f1_PER", "f1_LOC", "f1_ORG"} <= set(metrics)
    assert main(["evaluate", str(trained), "--data", str(data[1])]) == 0
    printed = capsys.readouterr().out
    assert "span F1" in printed and "PER" in printed


def test_cli_tag_conll_adds_a_column(trained, data, tmp_path, capsys):
    out = tmp_path / "tagged.txt"
    assert main(["tag", str(trained), "--input", str(data[1]), "--format", "conll",
                 "--output", str(out)]) == 0
    tagged = read_conll(out)  # the last column is the prediction
    gold = read_conll(data[1])
    assert tagged.tokens() == gold.tokens()
    assert len(out.read_text().splitlines()[2].split()) == 5


def test_cli_tag_text_prints_entities_with_offsets(trained, tmp_path, capsys):
    text = "Peter Blackburn visited Paris .\n\nMary Jones works for Reuters in Lima ."
    path = tmp_path / "news.txt"
    path.write_text(text)
    assert main(["tag", str(trained), "--input", str(path), "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(e["type"], e["text"]) for e in found} >= {("PER", "Peter Blackburn"),
                                                       ("LOC", "Paris"), ("ORG", "Reuters")}
    for e in found:
        assert text[e["start"]:e["end"]] == e["text"]
    assert main(["predict", str(trained), "Anna visited Tokyo ."]) == 0
    assert "[Anna]PER" in capsys.readouterr().out


def test_bad_input_is_named(trained, data, tmp_path, capsys):
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("Paris NNP I-NP I-GPE\n")
    assert main(["evaluate", str(trained), "--data", str(unknown)]) == 2
    assert "unknown.txt:1: unknown tag 'B-GPE'" in capsys.readouterr().err
    malformed = tmp_path / "malformed.txt"
    malformed.write_text("Paris NNP I-NP I-LOC\nLima I-LOC\n")
    assert main(["evaluate", str(trained), "--data", str(malformed)]) == 2
    assert "malformed.txt:2: expected 4 columns" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["evaluate", str(trained), "--data", str(empty)]) == 2
    assert "holds no sentences" in capsys.readouterr().err
    assert main(["train", "tagger", "--train", str(data[0]), "--out", str(tmp_path / "x"),
                 "--dropout", "1.5"]) == 2
    assert "dropout must be a number in [0, 1), got 1.5" in capsys.readouterr().err


def test_empty_and_very_long_sentences(trained):
    model = NERModel.load(trained)
    long = ["Paris", "is", "big", "."] * 500  # 2,000 tokens
    tags = model.tag([[], long, ["a" * 400]])
    assert tags[0] == [] and len(tags[1]) == 2000 and len(tags[2]) == 1
    assert model.entities("") == []


def test_casing_and_text_splitting():
    assert [casing(w) for w in ["1996", "12.5a", "the", "EU", "Paris", "-1-", "-"]] == \
        [1, 2, 3, 4, 5, 6, 7]
    text = "Mr. Smith went to the U.S. on Monday. He left!  Then 3 more came."
    sentences = split_text(text)
    assert [[t.text for t in s] for s in sentences][1] == ["He", "left", "!"]
    assert "U.S." in [t.text for t in sentences[0]]
    for s in sentences:
        for t in s:
            assert text[t.start:t.end] == t.text


def test_pretrained_vectors_fill_the_embedding(data, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 4\nparis 1 2 3 4\nzanzibar 0.5 0.5 0.5 0.5\n")
    assert set(read_vectors(vectors, 4)) == {"paris", "zanzibar"}
    with pytest.raises(ValueError, match=r"vectors.txt:2: expected a word and 3 numbers"):
        read_vectors(vectors, 3)
    from recur.tasks import tagger as task_module

    c = read_conll(data[0])
    data_config = TaggerDataConfig()
    found = read_vectors(vectors, 4)
    vocab = TaggerVocab.build(c.tokens(), c.tags(), data_config, extra_words=found)
    config = TaggerConfig(num_words=len(vocab.words), num_chars=len(vocab.chars),
                          tags=tuple(vocab.tags), word_dim=4)
    task = task_module.TaggerTask(vocab, [], [], config, vectors=found)
    weight = task.build_model().word_embed.weight
    assert weight[vocab.word_ids["paris"]].tolist() == [1, 2, 3, 4]
    assert weight[vocab.word_ids["zanzibar"]].tolist() == [0.5] * 4  # added to the vocabulary


def test_summary_table(trained, capsys):
    assert main(["summary", str(trained)]) == 0
    table = capsys.readouterr().out
    assert "crf (CRF)" in table and "rnn (Recurrent)" in table


def test_bioes_model_with_char_lstm_trains_and_evaluates_on_iob1_data(data, tmp_path):
    out = tmp_path / "bioes"
    assert main(["train", "tagger", "--train", str(data[0]), "--valid", str(data[1]), "--out",
                 str(out), "--preset", "small", "--epochs", "2", "--scheme", "bioes",
                 "--char-encoder", "lstm", "--quiet"]) == 0
    model = NERModel.load(out)
    assert model.scheme == "bioes" and "S-LOC" in model.vocab.tags and "E-PER" in model.vocab.tags
    assert 0 <= model.evaluate(data[1])["f1"] <= 1
