"""ONNX export: parity with torch under onnxruntime (< 1e-4) on ragged real and random
batches, dynamic batch and length, the CLI, and refusals that name the reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from serve_models import tiny_sentiment  # noqa: E402

from recur.cli import main  # noqa: E402
from recur.export import (  # noqa: E402
    ExportError,
    OnnxClassifier,
    OnnxSentimentModel,
    export_classifier,
)
from recur.models.classifier import ClassifierConfig, SequenceClassifier  # noqa: E402
from recur.tasks.sentiment import SentimentModel  # noqa: E402

REVIEWS = ["the film was wonderful", "the plot was awful and dull", "a superb moving story",
           "it was boring", "", "the actors were brilliant and the story was great " * 5,
           "words the vocabulary never saw: zyzzyva quixotic"]


def ragged_batches(vocab_size: int, seed: int = 0):
    """Random (tokens, lengths) with batch 1..9 and T 1..60, right-padded with zeros."""
    rng = np.random.default_rng(seed)
    for B, T in [(1, 1), (1, 60), (9, 13), (4, 37)]:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T
        tokens = rng.integers(1, vocab_size, size=(B, T))
        tokens[np.arange(T)[None, :] >= lengths[:, None]] = 0
        yield torch.from_numpy(tokens), torch.from_numpy(lengths)


def assert_parity(net, path, vocab_size):
    session = OnnxClassifier(path)
    for tokens, lengths in ragged_batches(vocab_size):
        with torch.no_grad():
            expected = net.probabilities(net(tokens, lengths)).numpy()
        got = session.probabilities(tokens.numpy(), lengths.numpy())
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tiny_sentiment()
    path = tmp_path_factory.mktemp("onnx") / "imdb.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(path)]) == 0
    return run, path


def test_trained_classifier_matches_torch_on_real_and_random_inputs(exported):
    run, path = exported
    torch_model = SentimentModel.load(run)
    onnx_model = OnnxSentimentModel.load(run, onnx=path)
    for p, q in zip(torch_model.predict(REVIEWS), onnx_model.predict(REVIEWS), strict=True):
        assert p.label == q.label
        assert np.abs(np.array(p.probabilities) - np.array(q.probabilities)).max() < 1e-4
    assert_parity(torch_model.model, path, torch_model.model.config.vocab_size)


def test_export_and_predict_with_the_onnx_backend_from_the_cli(exported, capsys):
    run, path = exported
    capsys.readouterr()
    assert main(["predict", str(run), *REVIEWS[:3], "--json"]) == 0
    by_torch = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(run), *REVIEWS[:3], "--json", "--backend", "onnx",
                 "--onnx", str(path)]) == 0
    by_onnx = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["label"] for p in by_onnx] == [p["label"] for p in by_torch]
    for p, q in zip(by_torch, by_onnx, strict=True):
        assert q["probability"] == pytest.approx(p["probability"], abs=1e-4)


def test_bidirectional_stacked_gru_with_attention_and_three_classes(tmp_path):
    net = SequenceClassifier(ClassifierConfig(
        vocab_size=40, num_classes=3, embed_dim=8, cell="gru", hidden_size=6, num_layers=2,
        bidirectional=True, pooling="attention")).eval()
    result = export_classifier(net, tmp_path / "gru.onnx")
    assert result.max_abs_diff < 1e-4
    assert_parity(net, result.path, 40)


@pytest.mark.slow
@pytest.mark.parametrize("config", [
    {"cell": "gru", "cell_options": {"reset": "before"}, "pooling": "max"},
    {"cell": "elman", "cell_options": {"activation": "relu"}, "bidirectional": True,
     "pooling": "mean"},
    {"cell": "elman", "cell_options": {"activation": "sigmoid", "single_bias": True}},
    {"cell": "lstm", "num_layers": 3, "bidirectional": True, "pooling": "last"},
])
def test_every_exportable_cell_matches_torch(tmp_path, config):
    net = SequenceClassifier(ClassifierConfig(vocab_size=40, embed_dim=8, hidden_size=6,
                                              **config)).eval()
    result = export_classifier(net, tmp_path / "m.onnx")
    assert_parity(net, result.path, 40)


def test_cells_without_an_onnx_operator_are_refused_and_nothing_is_written(tmp_path):
    net = SequenceClassifier(ClassifierConfig(vocab_size=40, embed_dim=8, hidden_size=6,
                                              cell="mingru")).eval()
    with pytest.raises(ExportError, match="cannot export a MinGRU cell.*cells that export: lstm"):
        export_classifier(net, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_cli_refuses_a_wrong_file_name_and_a_missing_model(exported, tmp_path, capsys):
    run, _ = exported
    assert main(["export", str(run), "--out", str(tmp_path / "model.txt")]) == 2
    assert "must be a file name ending in .onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["predict", str(run), "x", "--backend", "onnx", "--onnx",
                 str(tmp_path / "missing.onnx")]) == 2
    assert "missing.onnx does not exist" in capsys.readouterr().err
