"""Language model end to end through the CLI on a small generated text, and its bad input."""

import json
import math
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from recur.cli import main
from recur.tasks.language_model import TrainedLanguageModel

SHAKESPEARE = Path(os.environ.get("RECUR_DATA", "/nonexistent")) / "tinyshakespeare" / "input.txt"


def write_text(path, lines, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):  # a few fixed sentences: an easy stream to learn
            f.write(rng.choice(["the clouds are in the sky", "the sun is bright",
                                "the rain falls", "the sun is in the sky"]) + "\n")
    return path


def unigram_entropy(text: str) -> float:
    counts = Counter(text)
    n = sum(counts.values())
    return -sum(c / n * math.log(c / n) for c in counts.values())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    train = write_text(root / "train.txt", 1200, 0)
    valid = write_text(root / "valid.txt", 150, 1)
    out = root / "char"
    assert main(["train", "lm", "--train", str(train), "--valid", str(valid), "--level", "char",
                 "--preset", "tiny", "--out", str(out), "--epochs", "3", "--quiet"]) == 0
    return out, valid


def test_char_model_learns_far_below_the_unigram_baseline(trained, capsys):
    out, valid = trained
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(valid), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    baseline = unigram_entropy(valid.read_text())
    assert metrics["loss"] < 0.5 * baseline
    assert metrics["bpc"] == pytest.approx(metrics["loss"] / math.log(2))
    assert metrics["tokens"] == len(valid.read_text()) - 1  # every character predicted once


def test_generate_is_reproducible_with_a_seed_and_streams(trained, capsys):
    out, _ = trained
    args = ["generate", str(out), "--prompt", "the ", "--length", "40", "--seed", "3",
            "--temperature", "0.8", "--top-k", "5"]
    capsys.readouterr()
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("the ")
    pieces = list(TrainedLanguageModel.load(out).generate("the ", 10, seed=3))
    assert len(pieces) == 10  # one piece per character, as it is produced


def test_generate_greedy_and_stop_string(trained):
    model = TrainedLanguageModel.load(out := trained[0])
    text = "".join(model.generate("the clouds are in the ", 30, temperature=0.0, stop=("\n",)))
    assert text == "sky"
    assert model.beam("the clouds are in the ", length=3, beam_size=3) == "sky"
    assert out.exists()


def test_complete_finishes_the_word_and_ranks_by_probability(trained, capsys):
    out, _ = trained
    model = TrainedLanguageModel.load(out)
    completions = model.complete("the clouds are in the s", k=3)
    assert completions[0].text == "sky"
    probabilities = [c.probability for c in completions]
    assert probabilities == sorted(probabilities, reverse=True) and probabilities[0] > 0.5
    two = model.complete("the sun ", k=2, words=2)  # "the sun is bright" / "... is in the sky"
    assert "is in" in {c.text for c in two} and all(c.text.startswith("is ") for c in two)
    capsys.readouterr()
    assert main(["complete", str(out), "--prompt", "the clouds are in the ", "--k", "2",
                 "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["text"] == "sky" and len(lines) == 2


def test_empty_prompt_starts_a_new_line(trained):
    model = TrainedLanguageModel.load(trained[0])
    assert "".join(model.generate("", 12, temperature=0.0)).startswith("the ")


@pytest.mark.parametrize("extra, message", [
    (["--length", "0"], "--length must be a positive int, got 0"),
    (["--temperature", "-1"], "temperature must be a number >= 0"),
    (["--top-p", "1.5"], r"top_p must be a number in \(0, 1\]"),
    (["--top-k", "0"], "top_k must be an int >= 1"),
    (["--prompt", "the €"], "prompt holds characters this model never saw"),
])
def test_generate_bad_input(trained, capsys, extra, message):
    out, _ = trained
    capsys.readouterr()
    assert main(["generate", str(out), *extra]) == 2
    captured = capsys.readouterr()
    assert pytest.importorskip("re").search(message, captured.err)
    assert captured.out == ""  # nothing printed before the error


def test_complete_bad_k(trained, capsys):
    assert main(["complete", str(trained[0]), "--prompt", "the", "--k", "0"]) == 2
    assert "--k must be a positive int, got 0" in capsys.readouterr().err


def test_generate_refuses_a_checkpoint_of_another_task(tmp_path, capsys):
    from recur.training.checkpoint import write_json

    folder = tmp_path / "other"
    folder.mkdir()
    write_json(folder / "config.json", {"format": 1, "task": "sentiment", "configs": {}})
    assert main(["generate", str(folder), "--prompt", "x"]) == 2
    assert "holds a 'sentiment' checkpoint, not a 'language_model' one" in capsys.readouterr().err


def test_word_level_train_and_next_word(tmp_path, capsys):
    train = write_text(tmp_path / "train.txt", 600, 2)
    out = tmp_path / "word"
    assert main(["train", "lm", "--train", str(train), "--valid-fraction", "0.1", "--level",
                 "word", "--preset", "tiny", "--out", str(out), "--epochs", "4", "--bptt", "8",
                 "--lr", "0.02", "--quiet"]) == 0
    model = TrainedLanguageModel.load(out)
    assert model.codec.level == "word"
    top = model.complete("the clouds are in the", k=3)
    assert top[0].text == "sky"
    capsys.readouterr()
    with pytest.warns(UserWarning, match="outside the vocabulary"):
        model.complete("the zebra", k=1)
    assert {c.text for c in model.complete("the sun", k=2, words=2)} == {"is bright", "is in"}
    line = "".join(model.generate("the clouds are", 20, temperature=0.0, stop_at_eos=True))
    assert line == " in the sky"  # one sentence, spaced after the prompt's last word


@pytest.mark.slow
def test_shakespeare_smoke_run_beats_the_unigram_baseline(tmp_path, capsys):
    from recur.tasks.language_model import read_text, split_text

    path = SHAKESPEARE
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    text = read_text(path)[:300_000]
    _, valid = split_text(text, 0.1)
    out = tmp_path / "run"
    assert main(["train", "lm", "--train", str(path), "--limit", "300000", "--preset", "tiny",
                 "--hidden-size", "128", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    metrics = TrainedLanguageModel.load(out).evaluate(valid)
    assert metrics["loss"] < unigram_entropy(valid) - 0.8  # unigram ≈ 3.3 nats/char


def test_conditional_model_generates_what_its_label_says(tmp_path, capsys):
    rng = random.Random(0)
    path = tmp_path / "reviews.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(300):
            label = i % 2
            opening = rng.choice(["great fun", "loved it"] if label else ["dull mess", "awful"])
            f.write(json.dumps({"text": f"{opening}, the film", "label": label}) + "\n")
    out = tmp_path / "cond"
    assert main(["train", "lm", "--train", str(path), "--labelled", "--preset", "tiny",
                 "--out", str(out), "--epochs", "8", "--batch-size", "16", "--quiet"]) == 0
    model = TrainedLanguageModel.load(out)
    assert model.label_names == ["negative", "positive"]
    for label, openings in (("positive", ("great", "loved")), ("negative", ("dull", "awful"))):
        text = "".join(model.generate("", 6, temperature=0.0, condition=label))
        assert text.startswith(openings), (label, text)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] < 1.0
    assert main(["generate", str(out), "--condition", "neutral"]) == 2
    assert "condition must be one of negative, positive" in capsys.readouterr().err


def test_condition_on_an_unconditional_model_is_an_error(trained):
    model = TrainedLanguageModel.load(trained[0])
    with pytest.raises(ValueError, match="not trained with conditions"):
        model.generate("the", 5, condition="positive")


def test_bpe_model_completes_whole_words(tmp_path):
    train = write_text(tmp_path / "train.txt", 600, 3)
    out = tmp_path / "bpe"
    assert main(["train", "lm", "--train", str(train), "--level", "bpe", "--max-tokens", "40",
                 "--preset", "tiny", "--out", str(out), "--epochs", "4", "--bptt", "8",
                 "--lr", "0.02", "--quiet"]) == 0
    model = TrainedLanguageModel.load(out)
    top = model.complete("the clouds are in the", k=2)
    assert top[0].text == "sky" and top[0].probability > 0.5
    assert model.complete("the rain", k=1, words=1)[0].text == "falls"


def test_dropout_flags_override_the_preset_and_reach_the_saved_model(tmp_path, capsys):
    import argparse

    from recur.tasks.language_model import add_train_arguments, configs_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--train", "t.txt", "--out", "o", "--preset", "word-best",
                              "--dropout", "0.5", "--output-dropout", "0.45",
                              "--weight-drop", "0.3", "--embed-dropout", "0.1"])
    _, model, _ = configs_from_args(args)
    assert (model["hidden_dropout"], model["output_dropout"]) == (0.5, 0.45)
    assert (model["weight_drop"], model["embed_dropout"], model["input_dropout"]) == (0.3, 0.1, 0.4)
    train = write_text(tmp_path / "train.txt", 200, 4)
    out = tmp_path / "wd"
    assert main(["train", "lm", "--train", str(train), "--level", "word", "--preset", "tiny",
                 "--epochs", "1", "--weight-drop", "0.25", "--out", str(out), "--quiet"]) == 0
    assert TrainedLanguageModel.load(out).model.config.weight_drop == 0.25
    assert main(["train", "lm", "--train", str(train), "--level", "word", "--preset", "tiny",
                 "--weight-drop", "1.5", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "weight_drop must be a number in [0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_ema_flag_averages_the_weights_that_are_saved_and_is_checked(tmp_path, capsys):
    train = write_text(tmp_path / "train.txt", 300, 5)
    out = tmp_path / "ema"
    assert main(["train", "lm", "--train", str(train), "--level", "word", "--preset", "tiny",
                 "--epochs", "2", "--ema", "0.99", "--out", str(out), "--quiet"]) == 0
    saved = json.loads((out / "best" / "config.json").read_text())
    assert saved["training"]["ema_decay"] == 0.99
    valid = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in valid if r["kind"] == "valid"]
    assert len(valid) == 2 and all("valid_raw_perplexity" in r for r in valid)
    assert main(["train", "lm", "--train", str(train), "--level", "word", "--preset", "tiny",
                 "--ema", "1", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "ema_decay must be a number in (0, 1), got 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_epochs_set_the_schedule_and_a_time_budget_slices_the_run(tmp_path):
    """With --epochs, a preset's cosine decays over those epochs, not over --time-budget:
    a run stopped by its budget and resumed follows one schedule to the end."""
    from recur.training.config import TrainConfig
    from recur.training.trainer import learning_rate

    train = write_text(tmp_path / "train.txt", 2000, 6)
    out = tmp_path / "sliced"
    common = ["train", "lm", "--train", str(train), "--preset", "char", "--embed-dim", "8",
              "--hidden-size", "16", "--batch-size", "4", "--bptt", "16", "--precision",
              "fp32", "--epochs", "2", "--out", str(out), "--quiet"]
    assert main(common + ["--time-budget", "0.0001"]) == 0
    first = json.loads((out / "last" / "trainer_state.json").read_text())
    assert first["epoch"] == 0 and first["step"] >= 1  # cut by the budget in epoch 1
    assert main(common + ["--time-budget", "60", "--resume"]) == 0
    saved = json.loads((out / "last" / "config.json").read_text())["training"]
    config = TrainConfig(**{k: tuple(v) if k == "betas" else v for k, v in saved.items()})
    assert config.schedule_by_time is False and config.time_budget_min == 60
    total = json.loads((out / "last" / "trainer_state.json").read_text())["step"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    lrs = [(r["step"], r["lr"]) for r in records if r["kind"] == "train"]
    assert len(lrs) >= 5 and lrs[0][0] < first["step"] + 40
    for step, lr in lrs:
        assert lr == pytest.approx(learning_rate(config, step - 1, total), rel=1e-9, abs=1e-12)


def test_word_long_preset_is_the_sliced_ptb_recipe():
    """`word-long` is `word-best` with the flags of the documented 35-epoch run, and its
    cosine runs over epochs even when a time budget slices it."""
    import argparse

    from recur.tasks.language_model import add_train_arguments, configs_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    common = ["--train", "t.txt", "--out", "o", "--level", "word"]
    flags = ["--embed-dropout", "0.1", "--input-dropout", "0.5", "--hidden-dropout", "0.35",
             "--output-dropout", "0.5", "--weight-drop", "0.4", "--lr", "2.5e-3",
             "--ema", "0.999", "--epochs", "35", "--time-budget", "135"]
    by_flags = configs_from_args(parser.parse_args(common + ["--preset", "word-best", *flags]))
    by_preset = configs_from_args(parser.parse_args(common + ["--preset", "word-long",
                                                              "--time-budget", "135"]))
    assert by_preset == by_flags
    assert by_preset[2].epochs == 35 and not by_preset[2].schedule_by_time
    assert by_preset[2].time_budget_min == 135
