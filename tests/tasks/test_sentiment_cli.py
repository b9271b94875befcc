"""Sentiment end to end through the CLI on a small generated dataset, and its bad input."""

import json
import random

import pytest

from recur.cli import main
from recur.tasks.sentiment import SentimentModel

POSITIVE = ["great", "wonderful", "loved", "superb", "brilliant", "moving"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "stupid", "dull"]
FILLER = ["the", "movie", "film", "was", "plot", "actors", "and", "a", "it", "story"]


def write_reviews(path, n, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            label = i % 2
            words = rng.choices(FILLER, k=rng.randint(4, 12))
            words.insert(rng.randrange(len(words)), rng.choice(POSITIVE if label else NEGATIVE))
            f.write(json.dumps({"text": " ".join(words) + " <br /><br />", "label": label}) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentiment")
    train = write_reviews(root / "train.jsonl", 400, 0)
    valid = write_reviews(root / "valid.jsonl", 100, 1)
    out = root / "run"
    code = main(["train", "sentiment", "--train", str(train), "--valid", str(valid),
                 "--out", str(out), "--epochs", "6", "--hidden-size", "16", "--quiet"])
    assert code == 0
    return out, valid


def test_train_learns_and_evaluate_json_reports_accuracy(trained, capsys):
    out, valid = trained
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(valid), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] > 0.9          # the keyword decides the label
    assert metrics["count"] == 100
    assert len(metrics["confusion_matrix"]) == 2


def test_predict_returns_input_order_and_probabilities(trained, capsys):
    out, _ = trained
    texts = ["the film was wonderful", "the film was awful", "", "a superb and moving story"]
    predictions = SentimentModel.load(out).predict(texts)
    assert [p.text for p in predictions] == texts
    assert [p.label for p in predictions][:2] == ["positive", "negative"]
    assert predictions[3].label == "positive"
    for p in predictions:
        assert abs(sum(p.probabilities) - 1) < 1e-6
    capsys.readouterr()
    assert main(["predict", str(out), "the film was wonderful", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "positive"


def test_summary_prints_the_parameter_table(trained, capsys):
    out, _ = trained
    assert main(["summary", str(out)]) == 0
    assert "Total params:" in capsys.readouterr().out


def test_existing_run_is_not_overwritten_without_flag(trained, capsys):
    out, valid = trained
    before = (out / "best" / "model.safetensors").read_bytes()
    code = main(["train", "sentiment", "--train", str(valid), "--out", str(out), "--epochs", "1",
                 "--quiet"])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "best" / "model.safetensors").read_bytes() == before


def test_unknown_label_is_a_one_line_error_naming_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": 1}\n{"text": "meh", "label": "maybe"}\n')
    code = main(["train", "sentiment", "--train", str(bad), "--out", str(tmp_path / "o"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "'maybe'" in err and "bad.jsonl" in err and "line 2" in err


def test_evaluate_without_data_names_the_missing_argument(trained, capsys):
    """--data is optional for models that re-read their own data (forecasters), not here."""
    out, _ = trained
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 2
    assert "evaluate needs --data PATH" in capsys.readouterr().err


def test_evaluate_refuses_the_language_model_cache_flags(trained, capsys):
    out, valid = trained
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(valid), "--cache-size", "100"]) == 2
    assert "--cache-size applies to language models only" in capsys.readouterr().err


def test_missing_model_folder_and_missing_texts_are_clear_errors(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope"), "hello"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope"), "--data", "x.jsonl"]) == 2


def test_version_and_the_bench_verb(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("recur ")
    assert main(["bench", "nope"]) == 2          # no longer a planned verb (tests/test_benchsuite.py)
    assert "unknown suite 'nope'" in capsys.readouterr().err


def test_diverged_training_exits_non_zero_with_a_hint(tmp_path, monkeypatch, capsys):
    from recur.training import Trainer

    def diverge(self):
        self._session_start, self._elapsed_before = 0.0, 0.0
        return self._result("nonfinite", {})

    monkeypatch.setattr(Trainer, "fit", diverge)
    train = write_reviews(tmp_path / "train.jsonl", 40, 0)
    code = main(["train", "sentiment", "--train", str(train), "--out", str(tmp_path / "run"),
                 "--quiet"])
    assert code == 1
    assert "training diverged" in capsys.readouterr().err


def test_explain_finds_the_deciding_word_and_inspect_writes_pngs(trained, tmp_path, capsys):
    out, _ = trained
    e = SentimentModel.load(out).explain("the plot and the actors were awful and the story")
    assert e.prediction.label == "negative"
    for attribution in (e.integrated_gradients, e.occlusion):
        best = int(attribution.scores.argmax())
        assert e.tokens[best] == "awful"              # the only word that carries a label
    assert abs(e.integrated_gradients.delta) < 0.05 * abs(
        e.integrated_gradients.score - e.integrated_gradients.baseline_score)
    assert set(e.gates.values) >= {"i", "f", "o", "h", "c"}
    capsys.readouterr()
    assert main(["inspect", str(out), "--text", "a wonderful film", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "wonderful" in printed and "integrated grad" in printed
    for name in ("attributions", "gates", "gradient-flow"):
        assert (tmp_path / f"text0-{name}.png").stat().st_size > 1000
    assert main(["inspect", str(out)]) == 2
    assert "--text" in capsys.readouterr().err
