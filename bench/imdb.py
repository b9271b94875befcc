"""The lecture notes' seed IMDB model, recur vs Keras 3: seconds per epoch, validation accuracy.

Same data, same machine, same model (Embedding 1001×128 → LSTM 64 → Dense 64 relu →
Dense 1 sigmoid; Adam 1e-3, binary cross-entropy, batch 32; 181,761 parameters):

* data: IMDB train from ``recur.data.read_imdb`` (the shared train.jsonl.gz), split with
  ``split_train_valid(data, 0.1, 0)`` (22,500 train / 2,500 valid), recur's
  ``WordTokenizer(max_tokens=1000)`` fitted on the training texts, and
  ``encode_texts(tokenizer, texts, 100)`` (head truncation). ``SentimentTask`` encodes
  exactly so; its ids, right-padded with 0 to length 100, are the int32 arrays Keras gets
  (through a temporary .npz of .npy arrays).
* **recur Trainer** — ``Trainer`` + ``SentimentTask`` with ``PRESETS["seed"]`` (epochs
  overridden): batches padded to their longest sequence, with lengths, so padding never
  changes a prediction. On CPU the fused oneDNN kernel runs up to the batch's shortest
  length and recur's readable per-step loop runs the ragged rest.
* **recur hand loop, fixed length** — the same model in a hand-written loop over the
  Keras arrays, no lengths: every batch is 100 steps, padding read as tokens — the work
  Keras does (its model has no masking), all of it in the fused kernel.
* **Keras 3** — run in a subprocess with another interpreter (``--keras-python``; never
  recur's venv), TensorFlow backend unless ``KERAS_BACKEND`` says otherwise.

Epochs are interleaved, one of each contender per round (hand loop, Keras, Trainer), so a
slow phase of the shared machine lands on all of them; the Keras process waits on its
stdin between epochs. An epoch's time is its training pass only: recur's Trainer
validates and saves between epochs, outside the stamps. Epoch 1 (warm-up, tracing, XLA
compilation) is reported apart; "s / epoch" is the median of epochs 2..N. Validation
accuracy is measured after the last epoch on the same 2,500 reviews (Keras and the hand
loop read them padded to 100; the Trainer with lengths).

Run from the repository root:

    python3.11 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install tensorflow-cpu keras  # once
    .venv/bin/python bench/imdb.py --keras-python /tmp/kvenv/bin/python        # 3 epochs
    .venv/bin/python bench/imdb.py --limit 3200 --epochs 2 --no-keras          # quick look

It prints a markdown table (as pasted into docs/benchmarks.md) and writes
bench/results/imdb.json (``--out`` to change). Only the standard library and NumPy are
imported at module level: the Keras worker (``--keras-worker``) runs this same file under
the Keras interpreter, which has neither torch nor recur.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

MAX_LENGTH = 100
BATCH_SIZE = 32
MARKER = "@@keras "  # prefixes the worker's protocol lines on stdout


# -- the Keras side (runs under --keras-python) --------------------------------------------------


def keras_worker(arrays: Path, epochs: int, threads: int) -> None:
    """Train the notes' Keras model on the arrays, one epoch per "go" line on stdin.

    Writes JSON lines (prefixed with MARKER) to stdout: "ready", one "epoch" per epoch,
    then "result" after evaluating on the validation arrays.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    backend = keras.backend.backend()
    versions = {"keras": keras.__version__, "backend": backend}
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        versions["tensorflow"] = tf.__version__
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
        versions["torch"] = torch.__version__

    def send(message: dict) -> None:
        print(MARKER + json.dumps(message), flush=True)

    def wait_for_turn() -> None:
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("keras worker: stdin closed before the next turn")

    data = np.load(arrays)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(data["x_train"].shape[1],), dtype="int32"),
        keras.layers.Embedding(1001, 128),
        keras.layers.LSTM(64),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy"])
    send({"event": "ready", **versions, "parameters": model.count_params()})

    class Turns(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            wait_for_turn()
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            send({"event": "epoch", "epoch": epoch, "seconds": time.perf_counter() - self.start,
                  "loss": float((logs or {}).get("loss", float("nan")))})

    model.fit(data["x_train"], data["y_train"], batch_size=BATCH_SIZE, epochs=epochs,
              shuffle=True, verbose=0, callbacks=[Turns()])
    wait_for_turn()
    start = time.perf_counter()
    loss, accuracy = model.evaluate(data["x_valid"], data["y_valid"], batch_size=BATCH_SIZE,
                                    verbose=0)
    send({"event": "result", "valid_accuracy": float(accuracy), "valid_loss": float(loss),
          "evaluate_s": time.perf_counter() - start, "jit_compile": str(model.jit_compile)})


class KerasProcess:
    """The parent's handle on the Keras worker: one ``epoch()`` call per turn."""

    def __init__(self, python: str, arrays: Path, epochs: int, threads: int,
                 stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")  # noqa: SIM115 (closed in finish/close)
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--keras-worker", str(arrays),
             "--epochs", str(epochs), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.info = self._expect("ready")

    def _expect(self, event: str) -> dict:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARKER):
                message = json.loads(line[len(MARKER):])
                if message["event"] != event:
                    raise RuntimeError(f"keras worker sent {message['event']!r}, expected {event!r}")
                return message
        self.close()
        tail = self.stderr_path.read_text()[-3000:]
        raise RuntimeError(f"keras worker exited (code {self.proc.returncode}) before "
                           f"{event!r}; its stderr ends with:\n{tail}")

    def _go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def epoch(self) -> float:
        self._go()
        return float(self._expect("epoch")["seconds"])

    def finish(self) -> dict:
        self._go()
        result = self._expect("result")
        self.close()
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def keras_available(python: str | None) -> tuple[bool, str]:
    """Whether ``python`` can import keras (and its backend); the reason if not."""
    if not python:
        return False, "no --keras-python given"
    if not Path(python).exists():
        return False, f"--keras-python {python} does not exist"
    probe = ("import os; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2'); import keras; "
             "keras.backend.backend(); print(keras.__version__)")
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"{python} could not import keras: {err}"
    if done.returncode != 0:
        return False, f"{python} could not import keras: {done.stderr.strip()[-500:]}"
    return True, f"keras {done.stdout.strip()}"


# -- the recur side ------------------------------------------------------------------------------


def pad(ids: Sequence[Sequence[int]], length: int, pad_id: int = 0) -> np.ndarray:
    """Right-pad (and check) token-id lists into an (N, length) int32 array, as Keras'
    TextVectorization(output_sequence_length=length) lays them out."""
    out = np.full((len(ids), length), pad_id, dtype=np.int32)
    for row, sequence in enumerate(ids):
        if len(sequence) > length:
            raise ValueError(f"sequence {row} has {len(sequence)} ids, more than {length}")
        out[row, : len(sequence)] = sequence
    return out


class TimedEpochs:
    """A task's training batches: ``before()`` runs first (the other contenders' turns),
    then the pass is timed into ``seconds``. Sized, so the Trainer can count steps."""

    def __init__(self, batches: Any, seconds: list[float], before: Callable[[], None]) -> None:
        self.batches, self.seconds, self.before = batches, seconds, before

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.before()
        start = time.perf_counter()
        yield from self.batches
        self.seconds.append(time.perf_counter() - start)


class FixedLengthLoop:
    """recur's seed model in a hand loop over the padded arrays: forward → loss → zero_grad
    → backward → step, every batch 100 steps long with padding read as tokens (as Keras)."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, seed: int = 0) -> None:
        import torch

        from recur.models import ClassifierConfig, SequenceClassifier

        torch.manual_seed(seed)
        self.torch = torch
        self.model = SequenceClassifier(ClassifierConfig.seed())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x = torch.from_numpy(x_train.astype(np.int64))                      # (N, T)
        self.y = torch.from_numpy(y_train.astype(np.int64))                      # (N,)
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> float:
        start = time.perf_counter()
        self.model.train()
        order = self.torch.randperm(len(self.x), generator=self.generator)
        for batch in order.split(BATCH_SIZE):
            logits = self.model(self.x[batch])                                   # (B,)
            loss = self.model.loss(logits, self.y[batch])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        self.model.eval()
        correct = 0
        with self.torch.no_grad():
            for start in range(0, len(x), 256):
                tokens = self.torch.from_numpy(x[start:start + 256].astype(np.int64))  # (B, T)
                predicted = (self.model(tokens) > 0).numpy()                          # (B,)
                correct += int((predicted == (y[start:start + 256] > 0.5)).sum())
        return correct / len(x)


def prepare(data_path: str | None, limit: int | None) -> dict[str, Any]:
    """Read, split, tokenise; the SentimentTask pieces and the padded arrays for Keras."""
    from recur.data import text as text_data
    from recur.models import ClassifierConfig
    from recur.tasks.sentiment import PRESETS, build_tokenizer, read_sentiment

    preset = PRESETS["seed"]
    if (preset.data.tokenizer, preset.data.max_tokens, preset.data.max_length,
            preset.data.batch_size) != ("word", 1000, MAX_LENGTH, BATCH_SIZE):
        raise RuntimeError(f"the seed preset changed ({preset.data}); update bench/imdb.py")
    full = read_sentiment(data_path) if data_path else text_data.read_imdb()
    train, valid = text_data.split_train_valid(full, 0.1, 0)
    if limit is not None:
        train = train.subset(range(min(limit, len(train))))
    tokenizer = build_tokenizer(preset.data).fit(train.texts)  # WordTokenizer(max_tokens=1000)
    model_config = ClassifierConfig(num_classes=2, **preset.model)
    return {"preset": preset, "train": train, "valid": valid, "tokenizer": tokenizer,
            "model_config": model_config}


def run(prepared: dict[str, Any], *, epochs: int, threads: int, keras_python: str | None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the three contenders for ``epochs`` epochs each, interleaved epoch by epoch."""
    from recur.tasks.sentiment import SentimentTask
    from recur.training import Trainer

    preset, tokenizer = prepared["preset"], prepared["tokenizer"]
    trainer_seconds: list[float] = []
    hand_seconds: list[float] = []
    keras_seconds: list[float] = []

    class TimedSentimentTask(SentimentTask):
        def train_batches(self, epoch: int):
            return TimedEpochs(super().train_batches(epoch), trainer_seconds, other_turns)

    task = TimedSentimentTask(prepared["train"], prepared["valid"], tokenizer, preset.data,
                              prepared["model_config"], seed=0)
    # SentimentTask's ids are encode_texts(tokenizer, texts, 100): the same ints for Keras.
    arrays = {"x_train": pad(task.train_ids, MAX_LENGTH, tokenizer.pad_id),
              "y_train": np.asarray(task.train_labels, dtype=np.float32),
              "x_valid": pad(task.valid_ids, MAX_LENGTH, tokenizer.pad_id),
              "y_valid": np.asarray(task.valid_labels, dtype=np.float32)}
    # How much of each Trainer batch runs outside the fused kernel: the steps past the
    # batch's shortest sequence (epoch 0's batches).
    batcher = SentimentTask.train_batches(task, 0)
    tails = [int(batcher.lengths[b].max() - batcher.lengths[b].min()) for b in batcher.plan(0)]
    ragged = {"fraction_shorter_than_max_length": float(np.mean(batcher.lengths < MAX_LENGTH)),
              "mean_padded_length": float(np.mean([batcher.lengths[b].max()
                                                   for b in batcher.plan(0)])),
              "mean_readable_steps_per_batch": float(np.mean(tails))}
    log(f"data: {len(task.train_ids):,} train / {len(task.valid_ids):,} valid, vocabulary "
        f"{tokenizer.vocab_size}; {ragged['fraction_shorter_than_max_length']:.1%} of train "
        f"texts shorter than {MAX_LENGTH} tokens; Trainer batches run on average "
        f"{ragged['mean_readable_steps_per_batch']:.1f} of "
        f"{ragged['mean_padded_length']:.1f} steps on the readable path")

    available, keras_note = keras_available(keras_python)
    log(f"keras: {keras_note}")
    hand = FixedLengthLoop(arrays["x_train"], arrays["y_train"])
    with tempfile.TemporaryDirectory(prefix="recur-imdb-") as tmp:
        keras = None
        if available:
            np.savez(Path(tmp) / "arrays.npz", **arrays)
            keras = KerasProcess(keras_python, Path(tmp) / "arrays.npz", epochs, threads,
                                 Path(tmp) / "keras.stderr")
            keras_note = (f"keras {keras.info['keras']}, backend {keras.info['backend']} "
                          f"{keras.info.get(keras.info['backend'], '')}".strip())
            log(f"keras worker ready: {keras.info}")

        def other_turns() -> None:
            hand_seconds.append(hand.epoch())
            log(f"epoch {len(hand_seconds)}: hand loop {hand_seconds[-1]:.1f} s")
            if keras is not None:
                keras_seconds.append(keras.epoch())
                log(f"epoch {len(keras_seconds)}: keras {keras_seconds[-1]:.1f} s")

        config = replace(preset.training, epochs=epochs, quiet=True, device="cpu", seed=0)
        try:
            fit = Trainer(task, config, Path(tmp) / "run").fit()
            keras_result = keras.finish() if keras is not None else None
            keras_backend = keras.info["backend"] if keras is not None else None
        finally:
            if keras is not None:
                keras.close()
    log(f"trainer epochs: {', '.join(f'{s:.1f}' for s in trainer_seconds)} s")

    contenders = [
        ("recur Trainer (SentimentTask, seed preset)",
         "per-batch padding + lengths: fused kernel to the shortest length, readable loop after",
         trainer_seconds, fit.valid_metrics.get("accuracy")),
        ("recur hand loop, fixed length 100", "padded to 100, no lengths: all fused (Keras' work)",
         hand_seconds, hand.accuracy(arrays["x_valid"], arrays["y_valid"])),
    ]
    if keras_result is not None:
        contenders.append((f"Keras 3 ({keras_backend} backend)",
                           "padded to 100, no masking", keras_seconds,
                           keras_result["valid_accuracy"]))
    rows = [epoch_row(name, what, seconds, accuracy, trainer_seconds)
            for name, what, seconds, accuracy in contenders]
    return {"rows": rows, "keras": {"available": available, "note": keras_note,
                                    "result": keras_result},
            "train_size": len(task.train_ids), "valid_size": len(task.valid_ids), **ragged}


def epoch_row(name: str, what: str, seconds: list[float], accuracy: float | None,
              reference: list[float]) -> dict[str, Any]:
    """One table row: epoch 1 apart, median of epochs 2..N, paired ratio to ``reference``."""
    later, later_reference = seconds[1:], reference[1:]
    return {
        "contender": name,
        "what": what,
        "first_epoch_s": seconds[0] if seconds else None,
        "epoch_s": statistics.median(later) if later else None,
        "vs_recur_trainer": (statistics.median(s / r for s, r in zip(later, later_reference,
                                                                      strict=False))
                             if later else None),
        "valid_accuracy": accuracy,
        "epochs_s": seconds,
    }


def table(rows: Sequence[dict]) -> str:
    from common import markdown_table

    def number(value: float | None, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    header = ["contender", "inputs", "epoch 1 (s)", "s / epoch (2..N, median)",
              "time vs recur Trainer", "valid accuracy"]
    body = [[r["contender"], r["what"], number(r["first_epoch_s"], ".1f"),
             number(r["epoch_s"], ".1f"),
             "—" if r["vs_recur_trainer"] is None else f"{r['vs_recur_trainer']:.2f}×",
             number(r["valid_accuracy"], ".4f")] for r in rows]
    return markdown_table(header, body)


def markdown(document: dict, view: str | None = None) -> str:
    """The table of an imdb.json document (``recur bench --write-docs``); no views."""
    if view is not None:
        raise ValueError(f"imdb has no view {view!r}; it renders one table")
    keras_info = document["keras"]
    if not keras_info["available"]:
        note = f"Keras was unavailable: {keras_info['note']}"
    else:
        note = f"Keras side: {keras_info['note']}, jit_compile={keras_info['result']['jit_compile']}"
    return f"{table(document['rows'])}\n\n{note}"


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per contender (default 3)")
    parser.add_argument("--keras-python", default="/tmp/kvenv/bin/python",
                        help="interpreter with keras installed (default /tmp/kvenv/bin/python)")
    parser.add_argument("--no-keras", action="store_true", help="time the recur contenders only")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for torch and TensorFlow (default 1: on 2 cores shared with "
                        "other jobs, OpenMP threads wait on each other)")
    parser.add_argument("--data", help="labelled reviews (default: recur.data.read_imdb())")
    parser.add_argument("--limit", type=int, metavar="N", help="use only N training reviews")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/imdb.json)")
    parser.add_argument("--keras-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.threads < 1:
        parser.error(f"--epochs and --threads must be >= 1, got {args.epochs}, {args.threads}")
    if args.keras_worker:
        keras_worker(args.keras_worker, args.epochs, args.threads)
        return None

    from common import set_threads, write_results

    threads = set_threads(args.threads)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    prepared = prepare(args.data, args.limit)
    results = run(prepared, epochs=args.epochs, threads=threads,
                  keras_python=None if args.no_keras else args.keras_python, log=log)
    print(f"\n### IMDB seed model, {results['train_size']:,} train / {results['valid_size']:,} "
          f"valid reviews, batch {BATCH_SIZE}, {args.epochs} epochs, {threads} thread(s)\n")
    print(markdown(results))
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = {"command": " ".join(["python bench/imdb.py", *argv]), "epochs": args.epochs,
                "threads": threads, "limit": args.limit, "batch_size": BATCH_SIZE,
                "max_length": MAX_LENGTH, "wall_s": time.perf_counter() - started,
                "note": "2-core machine shared with other jobs; epochs interleaved"}
    path = write_results("imdb", {"settings": settings, **results}, args.out)
    log(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
