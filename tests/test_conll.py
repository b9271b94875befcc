"""CoNLL reading/writing, tag-scheme conversion, and span metrics against seqeval."""

import gzip
import random

import pytest

from recur.data.conll import format_conll, read_conll, write_conll
from recur.data.spans import Span, convert_tags, span_scores, spans

SAMPLE = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP I-NP B-PER

-DOCSTART- -X- O O

BRUSSELS NNP I-NP I-LOC
"""


def write(tmp_path, text, name="sample.txt"):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["sample.txt", "sample.txt.gz"])
def test_reads_sentences_docstarts_and_converts_iob1_to_iob2(tmp_path, name):
    corpus = read_conll(write(tmp_path, SAMPLE, name))
    assert [s.tokens for s in corpus.sentences] == [
        ["EU", "rejects", "German", "call"], ["Peter", "Blackburn", "Smith"], ["BRUSSELS"]]
    assert corpus.tags() == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER", "B-PER"],
                             ["B-LOC"]]
    assert [s.doc_start for s in corpus.sentences] == [True, False, True]
    assert [s.line for s in corpus.sentences] == [3, 8, 14]


def test_bioes_and_other_columns(tmp_path):
    path = write(tmp_path, SAMPLE)
    assert read_conll(path, scheme="bioes").tags() == [
        ["S-ORG", "O", "S-MISC", "O"], ["B-PER", "E-PER", "S-PER"], ["S-LOC"]]
    chunks = read_conll(path, tag_column=2)
    assert chunks.tags()[0] == ["B-NP", "B-VP", "B-NP", "I-NP"]
    assert read_conll(path, tag_column=None).tags() == [[], [], []]


def test_malformed_lines_name_file_and_line(tmp_path):
    bad = write(tmp_path, SAMPLE.replace("call NN I-NP O", "call NN O"))
    with pytest.raises(ValueError, match=r"sample.txt:6: expected 4 columns.*got 3"):
        read_conll(bad)
    bad_tag = write(tmp_path, SAMPLE.replace("rejects VBZ I-VP O", "rejects VBZ I-VP PER"))
    with pytest.raises(ValueError, match=r"sample.txt:4: malformed tag 'PER'"):
        read_conll(bad_tag)
    with pytest.raises(ValueError, match="tag_column 7 does not exist"):
        read_conll(write(tmp_path, SAMPLE), tag_column=7)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_conll(tmp_path / "missing.txt")


def test_writer_adds_the_predicted_column_and_reads_back(tmp_path):
    corpus = read_conll(write(tmp_path, SAMPLE))
    predicted = [["B-ORG", "O", "O", "O"], ["B-PER", "I-PER", "I-PER"], ["O"]]
    out = write_conll(tmp_path / "out.txt", corpus.sentences, predicted)
    text = out.read_text()
    assert "EU NNP I-NP I-ORG B-ORG\n" in text
    assert text.startswith("-DOCSTART- -X- O O O\n\nEU")
    again = read_conll(out)  # the last column is the prediction
    assert again.tags() == predicted
    assert read_conll(out, tag_column=3).tags() == corpus.tags()
    with pytest.raises(ValueError, match="predicted tags"):
        format_conll(corpus.sentences, [["O"], ["O"], ["O"]])


def test_spans_follow_conlleval_rules():
    assert spans(["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC"]) == [
        Span("PER", 0, 2), Span("LOC", 3, 5), Span("LOC", 5, 6)]
    assert spans(["B-PER", "I-LOC"]) == [Span("PER", 0, 1), Span("LOC", 1, 2)]
    assert spans(["S-PER", "B-ORG", "I-ORG", "E-ORG", "E-ORG"]) == [
        Span("PER", 0, 1), Span("ORG", 1, 4), Span("ORG", 4, 5)]
    assert spans([]) == []


def random_tags(rng, n, prefixes="BIO", types=("PER", "LOC", "ORG")):
    return ["O" if (p := rng.choice(prefixes)) == "O" else f"{p}-{rng.choice(types)}"
            for _ in range(n)]


@pytest.mark.parametrize("source", ["BIO", "BIOES"])
def test_conversion_round_trips_spans(source):
    rng = random.Random(0)
    for _ in range(300):
        tags = random_tags(rng, rng.randint(1, 12), source)
        for scheme in ("iob1", "iob2", "bioes"):
            converted = convert_tags(tags, scheme)
            assert spans(converted) == spans(tags), (tags, scheme, converted)
            assert convert_tags(converted, scheme) == converted


def test_span_scores_equal_seqeval_on_generated_predictions():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(1)
    for prefixes in ("BIO", "BIOES"):
        true = [random_tags(rng, rng.randint(1, 15), prefixes) for _ in range(200)]
        # predictions: mostly right, some tags flipped, including ill-formed sequences
        pred = [[t if rng.random() < 0.8 else random_tags(rng, 1, prefixes)[0] for t in s]
                for s in true]
        ours = span_scores(true, pred)
        report = seqeval.classification_report(true, pred, output_dict=True, zero_division=0)
        for kind, s in ours.by_type.items():
            assert s.precision == pytest.approx(report[kind]["precision"])
            assert s.recall == pytest.approx(report[kind]["recall"])
            assert s.f1 == pytest.approx(report[kind]["f1-score"])
            assert s.support == report[kind]["support"]
        assert ours.overall.f1 == pytest.approx(seqeval.f1_score(true, pred))
        assert ours.overall.precision == pytest.approx(seqeval.precision_score(true, pred))
        assert ours.overall.recall == pytest.approx(seqeval.recall_score(true, pred))
    perfect = span_scores(true, true)
    assert perfect.overall.f1 == 1.0
    assert span_scores([["O"]], [["O"]]).overall.f1 == 0.0  # no entities: 0, like seqeval
    with pytest.raises(ValueError, match="sentence 0"):
        span_scores([["O", "O"]], [["O"]])
