"""Tiny sentiment models for the serving, export and browser tests (trained in seconds)."""

from __future__ import annotations

import atexit
import contextlib
import json
import random
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

POSITIVE = ["great", "wonderful", "loved", "superb", "brilliant", "moving"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "stupid", "dull"]
FILLER = ["the", "movie", "film", "was", "plot", "actors", "and", "a", "it", "story"]


def write_reviews(path: Path, n: int, seed: int) -> Path:
    """``n`` JSONL reviews whose label is set by one keyword among filler words."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            label = i % 2
            words = rng.choices(FILLER, k=rng.randint(4, 12))
            words.insert(rng.randrange(len(words)), rng.choice(POSITIVE if label else NEGATIVE))
            f.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")
    return path


_TRAINED: dict[tuple, Path] = {}


def tiny_sentiment(cell: str = "lstm", bidirectional: bool = False) -> Path:
    """A keyword classifier trained once per test process (a few seconds); its run folder."""
    key = (cell, bidirectional)
    if key not in _TRAINED:
        root = Path(tempfile.mkdtemp(prefix="recur-serve-test-"))
        atexit.register(shutil.rmtree, root, True)
        _TRAINED[key] = train_tiny_sentiment(root, cell=cell, bidirectional=bidirectional)
    return _TRAINED[key]


def train_tiny_sentiment(root: Path, *, cell: str = "lstm", bidirectional: bool = False,
                         epochs: int = 4) -> Path:
    """Train a keyword classifier into ``root``/run and return the run folder."""
    from recur.tasks.sentiment import PRESETS, read_sentiment, train

    root.mkdir(parents=True, exist_ok=True)
    train_data = read_sentiment(write_reviews(root / "train.jsonl", 300, 0))
    valid_data = read_sentiment(write_reviews(root / "valid.jsonl", 60, 1))
    preset = PRESETS["seed"]
    data = replace(preset.data, max_tokens=100, max_length=40)
    model = dict(preset.model, vocab_size=100, embed_dim=16, hidden_size=16, cell=cell,
                 bidirectional=bidirectional, cell_options={} if cell != "lstm" else
                 preset.model["cell_options"])
    training = replace(preset.training, epochs=epochs, lr=1e-2, quiet=True)
    out = root / "run"
    train(train_data, valid_data, out, data, model, training, say=lambda *a: None)
    return out


@contextlib.contextmanager
def serve_in_thread(app):
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- a tiny tagger and a tiny translator (tests/test_serve_tagger.py, test_serve_translate.py) --

PEOPLE = ["John", "Mary", "Peter", "Anna", "Paul", "Maria"]
PLACES = ["London", "Paris", "Berlin", "Rome", "Madrid", "Vienna"]
WORDS = ["lives", "in", "visited", "and", "likes", "the", "city", "of", "today", "went", "to"]


def write_conll(path: Path, n: int, seed: int) -> Path:
    """``n`` CoNLL sentences (token and IOB2 tag per line): capitalised names of people
    and places among lower-case filler words."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [(w, "O") for w in rng.choices(WORDS, k=rng.randint(2, 6))]
        words.insert(rng.randrange(len(words) + 1), (rng.choice(PEOPLE), "B-PER"))
        words.insert(rng.randrange(len(words) + 1), (rng.choice(PLACES), "B-LOC"))
        lines += [f"{w} {t}" for w, t in words] + [". O", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_tagger() -> Path:
    """A name/place tagger trained once per test process (a few seconds); its run folder."""
    if "tagger" not in _TRAINED:
        from recur.tasks.tagger import PRESETS, train

        root = Path(tempfile.mkdtemp(prefix="recur-serve-tagger-"))
        atexit.register(shutil.rmtree, root, True)
        preset = PRESETS["small"]
        model = dict(preset.model, word_dim=16, char_dim=8, char_hidden=8, hidden_size=16,
                     dropout=0.0)
        training = replace(preset.training, epochs=4, lr=1e-2, quiet=True)
        train(write_conll(root / "train.conll", 200, 0), write_conll(root / "valid.conll", 40, 1),
              root / "run", preset.data, model, training, say=lambda *a: None)
        _TRAINED["tagger"] = root / "run"
    return _TRAINED["tagger"]


def tiny_translator() -> Path:
    """A word-reversing translator trained once per test process (seconds); its run folder."""
    if "translate" not in _TRAINED:
        from recur.data.parallel import ParallelTexts
        from recur.tasks.translate import PRESETS, train

        rng = random.Random(0)
        src = [" ".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 5)))
               for _ in range(600)]
        data_pairs = ParallelTexts(src, [" ".join(reversed(s.split())) for s in src])
        root = Path(tempfile.mkdtemp(prefix="recur-serve-translate-"))
        atexit.register(shutil.rmtree, root, True)
        preset = PRESETS["small"]
        data = replace(preset.data, tokenizer="word", vocab_size=20, batch_size=32)
        # LSTM: no compiled GRU kernel to build (a minute where its cache is cold)
        model = dict(preset.model, cell="lstm", embed_dim=16, encoder_hidden=16,
                     decoder_hidden=32, dropout=0.0)
        training = replace(preset.training, epochs=2, quiet=True)
        train(data_pairs, None, root / "run", data, model, training, say=lambda *a: None)
        _TRAINED["translate"] = root / "run"
    return _TRAINED["translate"]


def tiny_language_model() -> Path:
    """A character LM trained once per test process on generated text (seconds)."""
    if "language_model" not in _TRAINED:
        from recur.cli import main

        root = Path(tempfile.mkdtemp(prefix="recur-serve-lm-"))
        atexit.register(shutil.rmtree, root, True)
        rng = random.Random(0)
        text = "\n".join(" ".join(rng.choice(FILLER + POSITIVE) for _ in range(8))
                         for _ in range(400))
        (root / "train.txt").write_text(text, encoding="utf-8")
        assert main(["train", "lm", "--train", str(root / "train.txt"), "--valid-fraction",
                     "0.1", "--level", "char", "--preset", "tiny", "--out", str(root / "run"),
                     "--epochs", "2", "--quiet"]) == 0
        _TRAINED["language_model"] = root / "run"
    return _TRAINED["language_model"]
