"""``recur quickstart``: the main job — the lecture notes' IMDB model, end to end.

It finds IMDB (``--data``, ``$RECUR_DATA/imdb``, the shared data folder, the cache),
trains the seed model (Embedding → LSTM(64) → Dense → Dense) with a progress bar,
evaluates it on the held-back validation split, prints the notes' four example
predictions, saves the checkpoint and a loss-curve PNG, and tells you what to run next.

Without IMDB it offers the downloader (``--download`` or a yes at the prompt); with no
network it says so in one line and runs the same pipeline on scikit-learn's handwritten
digits read row by row (8 steps of 8 pixels: also many-to-one), so the command always
works end to end offline.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from recur.data.paths import download_root, find_dataset


def run(args: argparse.Namespace) -> int:
    folder = find_dataset("imdb", args.data) if args.data else find_dataset("imdb")
    if folder is None or not _has_imdb(folder):
        folder = _offer_download(args)
    if folder is None:
        return run_digits(args)
    return run_imdb(folder, args)


def _has_imdb(folder: Path) -> bool:
    return (folder / "train.jsonl.gz").is_file() or (folder / "aclImdb" / "train").is_dir()


def _offer_download(args: argparse.Namespace) -> Path | None:
    root = download_root(args.data)
    print("IMDB was not found (looked in --data, $RECUR_DATA, ../shared/datasets and "
          f"{root}).")
    wants = getattr(args, "download", False)
    if not wants and sys.stdin.isatty():
        answer = input("Download it now (about 84 MB)? [y/N] ").strip().lower()
        wants = answer in ("y", "yes")
    if not wants:
        print("Skipping the download (run `recur data download imdb` to get it).")
        return None
    from recur.data.download import download_dataset

    try:
        return download_dataset("imdb", root)
    except OSError as error:  # URLError is an OSError: no network, DNS, refused
        print(f"Cannot download IMDB: no network ({getattr(error, 'reason', error)}).")
        return None


def _finish(out: str, extra: list[str]) -> None:
    from recur.training.plot import plot_run

    try:
        pngs = plot_run(out)
        print("curves: " + ", ".join(str(p) for p in pngs))
    except (ValueError, FileNotFoundError) as error:
        print(f"(no curves: {error})")
    print("\nNext:")
    for line in extra:
        print(f"  {line}")


def run_imdb(folder: Path, args: argparse.Namespace) -> int:
    from recur.data.text import read_imdb, split_train_valid
    from recur.tasks.sentiment import EXAMPLES, PRESETS, train

    preset = PRESETS["seed"]
    training = replace(preset.training, quiet=args.quiet,
                       **({"epochs": args.epochs} if args.epochs else {}))
    full = read_imdb(folder.parent if folder.name == "imdb" else folder)
    train_data, valid = split_train_valid(full, preset.data.valid_fraction, preset.data.split_seed)
    print(f"IMDB from {folder}: training the lecture notes' seed model "
          f"(Embedding(1001,128) → LSTM(64) → Dense(64) → Dense(1)) for {training.epochs} epochs")
    _, model = train(train_data, valid, args.out, preset.data, preset.model, training,
                     overwrite=True)
    metrics = model.evaluate(valid)
    print(f"\nvalidation accuracy {metrics['accuracy']:.4f} on {metrics['count']:,} held-back "
          f"reviews (the notes' Keras model: 0.786 on the test split)")
    print("\nThe notes' example sentences:")
    for p in model.predict(list(EXAMPLES)):
        print(f"  {p.label:>8} {p.probabilities[1]:.3f}  {p.text}")
    print(f"\nsaved to {args.out}/best (model.safetensors, config.json, vocab.json)")
    _finish(args.out, [
        f"recur predict {args.out} \"a wonderful, moving film\"",
        f"recur summary {args.out}",
        "recur train sentiment --preset best --out runs/imdb-best   # ~20 min on 2 cores",
    ])
    return 0


def run_digits(args: argparse.Namespace) -> int:
    from recur.models.classifier import ClassifierConfig
    from recur.tasks.sequences import SequenceTask, digits
    from recur.training import TrainConfig, Trainer, load

    print("Running offline instead: scikit-learn's handwritten digits, each 8×8 image read "
          "row by row as an 8-step sequence (many-to-one), with an LSTM(64).")
    train_data, valid = digits()
    config = ClassifierConfig(vocab_size=0, input_features=8, num_classes=10, embed_dim=32,
                              hidden_size=64, head_sizes=(64,))
    task = SequenceTask(train_data, valid, config, batch_size=32)
    training = TrainConfig(epochs=args.epochs or 15, lr=3e-3, monitor="accuracy", mode="max",
                           quiet=args.quiet)
    Trainer(task, training, args.out, overwrite=True).fit()
    model = load(args.out)
    metrics = task.evaluate(model, task.valid_batches())
    print(f"\nvalidation accuracy {metrics['accuracy']:.4f} on {metrics['count']} held-back digits")
    print(f"saved to {args.out}/best")
    _finish(args.out, [f"recur summary {args.out}",
                       "recur data download imdb   # then run recur quickstart again"])
    return 0
