"""Translation end to end: train / translate / evaluate through the CLI, bad input, and a slow
run that must learn to reverse short sequences perfectly."""

import json

import pytest

from recur.cli import main

SRC = ["ein mann läuft .", "zwei hunde spielen .", "eine frau liest .", "ein kind isst .",
       "der mann sitzt .", "eine frau läuft ."]
TGT = ["a man runs .", "two dogs play .", "a woman reads .", "a child eats .",
       "the man sits .", "a woman runs ."]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny word-level model trained for a few epochs on six pairs."""
    folder = tmp_path_factory.mktemp("translate")
    src, tgt = write(folder / "train.de", SRC * 4), write(folder / "train.en", TGT * 4)
    out = folder / "run"
    code = main(["train", "translate", "--train-src", src, "--train-tgt", tgt,
                 "--valid-src", src, "--valid-tgt", tgt, "--out", str(out), "--preset", "small",
                 "--tokenizer", "word", "--vocab-size", "50", "--epochs", "2", "--quiet"])
    assert code == 0
    return folder, out


def test_train_writes_a_checkpoint_with_tokenizer_and_bleu(run):
    _, out = run
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["task"] == "translate"
    assert (out / "best" / "src" / "vocab.json").is_file()  # separate vocabularies
    assert (out / "best" / "tgt" / "vocab.json").is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("valid_bleu" in r for r in records)


def test_translate_and_evaluate(run, capsys):
    folder, out = run
    capsys.readouterr()
    assert main(["translate", str(out), "ein mann läuft .", "", "--beam", "1", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["source"] for line in lines] == ["ein mann läuft .", ""]
    assert lines[1]["translation"] == ""  # empty source, empty translation
    png = folder / "attention.png"
    assert main(["translate", str(out), "ein mann läuft .", "--beam", "3",
                 "--attention-png", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    src, ref = write(folder / "t.de", SRC), write(folder / "t.en", TGT)
    assert main(["evaluate", str(out), "--src", src, "--ref", ref, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"bleu", "chrf", "beam", "count"} and metrics["count"] == 6


def test_bad_input_is_named(run, capsys):
    folder, out = run
    capsys.readouterr()
    assert main(["translate", str(out), "ein mann", "--beam", "0"]) == 2
    assert "beam must be an int >= 1, got 0" in capsys.readouterr().err
    assert main(["evaluate", str(out)]) == 2
    assert "--src PATH --ref PATH" in capsys.readouterr().err
    short = write(folder / "short.en", TGT[:2])
    assert main(["evaluate", str(out), "--src", write(folder / "s.de", SRC), "--ref", short]) == 2
    assert "has 6, " in capsys.readouterr().err
    assert main(["train", "translate", "--train-src", str(folder / "missing.de"),
                 "--train-tgt", short, "--out", str(folder / "x")]) == 2
    assert "missing.de does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_learns_to_reverse_short_sequences(tmp_path):
    """Attention seq2seq must reverse 3-6 letter sequences perfectly (greedy, held-out set)."""
    import random

    from recur.data.parallel import ParallelTexts
    from recur.tasks.translate import PRESETS, Translator, train

    rng = random.Random(0)
    letters = "abcdefghij"

    def pairs(n):
        src = [" ".join(rng.choice(letters) for _ in range(rng.randint(3, 6))) for _ in range(n)]
        return ParallelTexts(src, [" ".join(reversed(s.split())) for s in src])

    train_data, valid = pairs(6000), pairs(200)
    preset = PRESETS["small"]
    from dataclasses import replace

    data = replace(preset.data, tokenizer="word", vocab_size=20, batch_size=64)
    training = replace(preset.training, epochs=12, schedule="cosine", quiet=True)
    model = dict(preset.model) | {"dropout": 0.0}
    _, translator = train(train_data, valid, tmp_path / "run", data, model, training,
                          say=lambda *_: None)
    assert isinstance(translator, Translator)
    outputs = [o[0].text for o in translator.translate(valid.src, beam=1)]
    wrong = [(s, o) for s, o, t in zip(valid.src, outputs, valid.tgt, strict=True) if o != t]
    assert not wrong, f"{len(wrong)} of {len(outputs)} reversed wrongly, e.g. {wrong[:3]}"
