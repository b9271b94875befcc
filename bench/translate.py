"""Translation speed: training tokens/s, and sentences/s for greedy and beam-5 decoding.

    OMP_NUM_THREADS=1 .venv/bin/python bench/translate.py [RUN_DIR] [--sentences 200]
        [--train-steps 10] [--data /work/shared/datasets/multi30k]

RUN_DIR is a trained translation checkpoint (default runs/translate-multi30k). Training
speed is measured on a fresh model of the same configuration (forward + backward + Adam
step, the checkpoint's precision), decoding speed on the checkpoint itself over the first
validation sentences. Both wall-clock and this process's CPU time are reported: on a
shared machine the CPU time is the steadier number. Results go to
bench/results/translate.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch

from recur.data.parallel import ParallelBatcher, encode_pairs, read_parallel
from recur.models.seq2seq import Seq2Seq
from recur.tasks.translate import Translator
from recur.training.checkpoint import read_config

RESULTS = Path(__file__).resolve().parent / "results" / "translate.json"


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def markdown(document: dict, view: str | None = None) -> str:
    """The table of a translate.json document (``recur bench --write-docs``); no views."""
    if view is not None:
        raise ValueError(f"translate has no view {view!r}; it renders one table")
    from common import markdown_table

    steps = f" ({document['train_steps']} batches)" if "train_steps" in document else ""
    rows = [(f"training, target tokens/s{steps}",
             document["train_tokens_per_s"]),
            ("greedy decoding, sentences/s", document["beam1_sentences_per_s"]),
            ("beam 5 decoding, sentences/s", document["beam5_sentences_per_s"])]
    body = [[what, f"{rate['wall']:,.1f}", f"{rate['cpu']:,.1f}"] for what, rate in rows]
    return (markdown_table(["measure", "wall clock", "per CPU-second"], body)
            + f"\n\n{document['run']}, {document['precision']}, {document['threads']} thread(s), "
              f"{document['sentences']} validation sentences.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="runs/translate-multi30k")
    parser.add_argument("--data", default="/work/shared/datasets/multi30k")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    translator = Translator.load(args.run)
    precision = read_config(args.run)["training"]["precision"]
    data = Path(args.data)
    valid = read_parallel(data / "val.de.gz", data / "val.en.gz").subset(range(args.sentences))
    train = read_parallel(data / "train.de.gz", data / "train.en.gz")
    train = train.subset(range(translator.data.batch_size * args.train_steps))
    results: dict[str, object] = {"benchmark": "translate", "run": str(args.run),
                                  "threads": torch.get_num_threads(), "precision": precision,
                                  "sentences": args.sentences, "train_steps": args.train_steps}

    # training: fresh model, same config, the run's precision
    tok = translator.tokenizers
    src, tgt, _ = encode_pairs(tok, train, translator.data.max_length)
    batches = list(ParallelBatcher(src, tgt, bos_id=tok.bos_id, eos_id=tok.eos_id,
                                   batch_size=translator.data.batch_size, shuffle=True).batches(0))
    model = Seq2Seq(translator.model.config).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def train_steps():
        tokens = 0
        for b in batches:
            with autocast:
                loss = model.token_loss(b.src, b.src_lengths, b.tgt_in, b.tgt_out, 0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            tokens += b.num_tokens
        return tokens

    for b in batches[:2]:  # warm-up
        with autocast:
            model.token_loss(b.src, b.src_lengths, b.tgt_in, b.tgt_out).backward()
    wall, cpu, tokens = timed(train_steps)
    results["train_tokens_per_s"] = {"wall": tokens / wall, "cpu": tokens / cpu}
    print(f"training: {tokens / wall:,.0f} target tokens/s wall, {tokens / cpu:,.0f} per CPU-second "
          f"({len(batches)} batches of {translator.data.batch_size}, {precision})")

    for beam in (1, 5):
        with autocast:
            wall, cpu, _ = timed(lambda beam=beam: translator.translate(valid.src, beam=beam))
        n = len(valid)
        results[f"beam{beam}_sentences_per_s"] = {"wall": n / wall, "cpu": n / cpu}
        print(f"decoding, beam {beam}: {n / wall:,.1f} sentences/s wall, {n / cpu:,.1f} per "
              f"CPU-second ({n} validation sentences, batch 64)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
