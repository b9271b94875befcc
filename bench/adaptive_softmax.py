"""Adaptive vs full softmax: training tokens/s of the `word` preset's model on Penn Treebank.

    PYTHONPATH=src .venv/bin/python bench/adaptive_softmax.py [--threads 1] [--repeats 5]
        [--train ../shared/datasets/ptb/ptb.train.txt.gz] [--cutoffs 2000 2000,6000]

One training step as the Trainer takes it: forward over a B x k window of the real PTB
stream (the words ranked by their training counts), loss (``model(x, targets=y)``),
backward, clip 0.25, Adam — for the preset's model (E = H = 400, 2 x LSTM, tied, its
dropouts) with the full 10,002-way softmax and with adaptive softmaxes
(``LanguageModelConfig.adaptive_cutoffs``), in fp32 and under bf16 autocast. Contenders
take turns round by round in this one process (bench/common.py); tokens/s = B·k / median
step time. Also prints the share of training targets each cluster holds.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import torch
from common import interleaved, markdown_table, set_threads

from recur.data.streams import TextCodec
from recur.models.adaptive_softmax import frequency_order
from recur.models.language_model import LanguageModel, LanguageModelConfig
from recur.tasks.language_model import PRESETS, read_text


def train_step(model: LanguageModel, optimizer, ids: torch.Tensor, B: int, k: int,
               precision: str, generator: torch.Generator):
    def run():
        start = torch.randint(len(ids) - k - 1, (B,), generator=generator)
        window = torch.stack([ids[s:s + k + 1] for s in start.tolist()])       # (B, k + 1)
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
                    else contextlib.nullcontext())
        with autocast:
            loss, _ = model(window[:, :-1], targets=window[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--train", default="../shared/datasets/ptb/ptb.train.txt.gz")
    parser.add_argument("--cutoffs", nargs="+", default=["2000", "2000,6000"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
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
    timings = interleaved(contenders, args.repeats, warmup=1, max_rounds=args.repeats)
    tokens = args.batch_size * args.bptt
    rows = []
    for precision in args.precisions:
        base = timings[f"full {precision}"].median
        for name in variants:
            t = timings[f"{name} {precision}"]
            rows.append([name, precision, f"{1e3 * t.median:.0f}", f"{tokens / t.median:,.0f}",
                         f"{base / t.median:.2f}x", t.contended])
    print(markdown_table(["softmax", "precision", "ms/step", "tokens/s", "vs full",
                          "contended rounds"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
