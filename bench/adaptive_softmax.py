"""Adaptive vs full softmax: training tokens/s of the `word` preset's model on Penn Treebank.

    PYTHONPATH=src .venv/bin/python bench/adaptive_softmax.py [--threads 1] [--repeats 5]
        [--train ../shared/datasets/ptb/ptb.train.txt.gz] [--cutoffs 2000 2000,6000]
        [--quality-steps N --valid ../shared/datasets/ptb/ptb.valid.txt.gz]
        [--generate-tokens N]

One training step as the Trainer takes it: forward over a B x k window of the real PTB
stream (the words ranked by their training counts), loss (``model(x, targets=y)``),
backward, clip 0.25, Adam — for the preset's model (E = H = 400, 2 x LSTM, tied, its
dropouts) with the full 10,002-way softmax and with adaptive softmaxes
(``LanguageModelConfig.adaptive_cutoffs``), in fp32 and under bf16 autocast. Contenders
take turns round by round in this one process (bench/common.py); tokens/s = B·k / median
step time, in wall-clock time and in this process's CPU time (on a machine shared with
other jobs, wall time also counts the waits for a core; with one thread, CPU time does
not). Also prints the share of training targets each cluster holds.

``--quality-steps N`` instead trains each contender N steps from the same seed on the same
windows (the stream read in order, state carried, Adam 2e-3, clip 0.25, no schedule) and
prints its validation perplexity on ``--valid`` (first ``--valid-tokens`` tokens, state
carried, dropout off): the price in perplexity per step, if any, of the approximation.
``--generate-tokens N`` instead times ``LanguageModel.step`` at B = 1 (generation's case:
the adaptive softmax must then score every cluster), CPU ms per token over N tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time

import torch
from common import interleaved, markdown_table, set_threads

from recur.data.streams import StreamBatches, TextCodec
from recur.models.adaptive_softmax import frequency_order
from recur.models.language_model import LanguageModel, LanguageModelConfig
from recur.tasks.language_model import PRESETS, read_text


def autocast(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model: LanguageModel, optimizer, ids: torch.Tensor, B: int, k: int,
               precision: str, generator: torch.Generator):
    def run():
        start = torch.randint(len(ids) - k - 1, (B,), generator=generator)
        window = torch.stack([ids[s:s + k + 1] for s in start.tolist()])       # (B, k + 1)
        with autocast(precision):
            loss, _ = model(window[:, :-1], targets=window[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
    return run


@torch.no_grad()
def valid_perplexity(model: LanguageModel, ids: torch.Tensor, k: int, precision: str) -> float:
    model.eval()
    total, count, state = 0.0, 0, None
    for window in StreamBatches(ids, 10, k, keep_tail=True):
        if state is not None and window.row is not None:
            state = tuple(s[:, window.row:window.row + 1] for s in state)
        with autocast(precision):
            loss, state = model(window.inputs, state, targets=window.targets)
        total += float(loss) * window.targets.numel()
        count += window.targets.numel()
    model.train()
    return math.exp(total / count)


def quality(variants: dict, V: int, order: torch.Tensor, ids: torch.Tensor,
            valid_ids: torch.Tensor, args: argparse.Namespace) -> None:
    rows = []
    for precision in args.precisions:
        for name, cutoffs in variants.items():
            torch.manual_seed(0)
            model = LanguageModel(LanguageModelConfig(vocab_size=V, **PRESETS["word"].model,
                                                      adaptive_cutoffs=cutoffs)).train()
            if cutoffs is not None:
                model.set_word_order(order)
            optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
            state, start = None, time.perf_counter()
            batches = iter(StreamBatches(ids, args.batch_size, args.bptt))
            for _ in range(args.quality_steps):
                window = next(batches)
                with autocast(precision):
                    loss, state = model(window.inputs, state, targets=window.targets)
                state = tuple(s.detach() for s in state)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
                optimizer.step()
            seconds = time.perf_counter() - start
            ppl = valid_perplexity(model, valid_ids, args.bptt, precision)
            rows.append([name, precision, args.quality_steps, f"{float(loss):.3f}",
                         f"{ppl:.1f}", f"{seconds:.0f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["softmax", "precision", "steps", "last train loss",
                          "valid perplexity", "train seconds"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--train", default="../shared/datasets/ptb/ptb.train.txt.gz")
    parser.add_argument("--cutoffs", nargs="+", default=["2000", "2000,6000"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--quality-steps", type=int)
    parser.add_argument("--generate-tokens", type=int)
    parser.add_argument("--valid", default="../shared/datasets/ptb/ptb.valid.txt.gz")
    parser.add_argument("--valid-tokens", type=int, default=20_000)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    text = read_text(args.train)
    codec = TextCodec.fit("word", text)
    ids = codec.encode_stream(text)
    V = codec.vocab_size
    order = frequency_order(ids, V)
    rank = torch.argsort(order)[ids]
    print(f"{len(ids):,} tokens, V = {V:,}, {threads} thread(s), B {args.batch_size} "
          f"x k {args.bptt}")
    variants: dict[str, tuple[int, ...] | None] = {"full": None}
    for text_cutoffs in args.cutoffs:
        cutoffs = tuple(int(c) for c in text_cutoffs.split(","))
        variants[f"adaptive {text_cutoffs}"] = cutoffs
        bounds = (0, *cutoffs, V)
        shares = [float(((rank >= a) & (rank < b)).float().mean())
                  for a, b in zip(bounds, bounds[1:], strict=False)]
        print(f"  {text_cutoffs}: share of targets per cluster (head first) "
              + ", ".join(f"{s:.3f}" for s in shares))
    if args.generate_tokens:
        for name, cutoffs in variants.items():
            torch.manual_seed(0)
            model = LanguageModel(LanguageModelConfig(vocab_size=V, **PRESETS["word"].model,
                                                      adaptive_cutoffs=cutoffs)).eval()
            state, token = None, torch.zeros(1, dtype=torch.long)
            with torch.no_grad():
                for _ in range(5):
                    _, state = model.step(token, state)
                start = time.process_time()
                for _ in range(args.generate_tokens):
                    _, state = model.step(token, state)
            ms = 1e3 * (time.process_time() - start) / args.generate_tokens
            print(f"{name}: {ms:.2f} CPU ms per generated token (B = 1, fp32)")
        return 0
    if args.quality_steps:
        valid_ids = codec.encode_stream(read_text(args.valid))[:args.valid_tokens]
        quality(variants, V, order, ids, valid_ids, args)
        return 0
    contenders = {}
    for precision in args.precisions:
        for name, cutoffs in variants.items():
            torch.manual_seed(0)
            config = LanguageModelConfig(vocab_size=V, **PRESETS["word"].model,
                                         adaptive_cutoffs=cutoffs)
            model = LanguageModel(config).train()
            if cutoffs is not None:
                model.set_word_order(order)
            optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
            contenders[f"{name} {precision}"] = train_step(
                model, optimizer, ids, args.batch_size, args.bptt, precision,
                torch.Generator().manual_seed(1))
    cpu: dict[str, list[float]] = {name: [] for name in contenders}

    def cpu_timed(name: str, run):
        def timed():
            start = time.process_time()
            run()
            cpu[name].append(time.process_time() - start)
        return timed

    timings = interleaved({name: cpu_timed(name, run) for name, run in contenders.items()},
                          args.repeats, warmup=1, max_rounds=args.repeats)
    cpu = {name: statistics.median(samples[1:]) for name, samples in cpu.items()}  # no warm-up
    tokens = args.batch_size * args.bptt
    rows = []
    for precision in args.precisions:
        base, base_cpu = timings[f"full {precision}"].median, cpu[f"full {precision}"]
        for name in variants:
            t, c = timings[f"{name} {precision}"], cpu[f"{name} {precision}"]
            rows.append([name, precision, f"{1e3 * t.median:.0f}", f"{tokens / t.median:,.0f}",
                         f"{base / t.median:.2f}x", f"{1e3 * c:.0f}", f"{tokens / c:,.0f}",
                         f"{base_cpu / c:.2f}x", t.contended])
    print(markdown_table(["softmax", "precision", "wall ms/step", "tokens/s", "vs full",
                          "CPU ms/step", "tokens/CPU-s", "vs full (CPU)", "contended rounds"],
                         rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
