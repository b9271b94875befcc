"""Tagger throughput: training sentences/s, tagging sentences/s, batched vs per-sentence Viterbi.

Three measurements on CoNLL-2003 sentences (the first ``--sentences`` of eng.train from
$RECUR_DATA/conll2003, or generated sentences of the same length profile if the file is
missing), with the ``best`` preset's SequenceTagger (word 100 + char CNN 50 + casing 8 →
BiLSTM 200+200 → CRF), interleaved round by round with medians (``common.interleaved``):

* **training**: one pass of forward + loss + backward + fused Adam step over the sentences
  in length-bucketed batches of ``--batch-size`` (the preset's);
* **tagging**: emissions + Viterbi for every sentence, in bucketed batches of 64 against
  one sentence at a time;
* **Viterbi alone**: ``CRF.decode`` on precomputed emissions, batched (64) against one
  sentence at a time — what batching the dynamic programme itself buys;
* **Adam step**: one optimizer step over the parameters of the same model with the full
  CoNLL word vocabulary (17,494 rows), torch's default (foreach) Adam against its fused
  kernel, which ``recur.training.build_optimizer`` uses.

Run from the repository root (one thread, as the measured training run):

    .venv/bin/python bench/tagger.py                 # ~2 min on a shared 2-core machine
    .venv/bin/python bench/tagger.py --quick         # seconds (smoke test)

It prints markdown tables (as pasted into docs/benchmarks.md) and writes
bench/results/tagger.json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from dataclasses import replace
from pathlib import Path

import torch
from common import interleaved, markdown_table, set_threads, write_results

from recur.data.conll import read_conll
from recur.models.tagger import SequenceTagger, TaggerConfig
from recur.tasks.tagger import PRESETS, TaggerBatcher, TaggerDataConfig, TaggerVocab, encode


def load_sentences(n: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]], str]:
    path = Path(os.environ.get("RECUR_DATA", "")) / "conll2003" / "eng.train.gz"
    if path.is_file():
        corpus = read_conll(path)
        return corpus.tokens()[:n], corpus.tags()[:n], str(path)
    rng = random.Random(seed)
    words = ["the", "Paris", "said", "EU", "1996", ",", "Peter", "market", "."]
    tokens = [[rng.choice(words) for _ in range(max(1, int(rng.expovariate(1 / 14))))]
              for _ in range(n)]
    tags = [["B-LOC" if w == "Paris" else "O" for w in s] for s in tokens]
    return tokens, tags, "generated"


def markdown(document: dict, view: str | None = None) -> str:
    """The table of a tagger.json document (``recur bench --write-docs``); no views."""
    if view is not None:
        raise ValueError(f"tagger has no view {view!r}; it renders one table")
    rows = []
    for name, r in document["results"].items():
        if "ms_per_step" in r:
            rows.append([name, f"{r['ms_per_step']:.1f} ms per step", "—"])
        else:
            rows.append([name, f"{r['median_s']:.2f}", f"{r['sentences_per_s']:,.0f}"])
    return (f"{document['sentences']} sentences ({document['tokens']:,} tokens), training batch "
            f"{document['batch_size']}, {document['machine']['torch_threads']} thread(s)\n\n"
            + markdown_table(["what", "seconds per pass", "sentences/s"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=PRESETS["best"].data.batch_size)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/tagger.json)")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    n, repeats = (48, 1) if args.quick else (args.sentences, args.repeats)
    tokens, tags, source = load_sentences(n)
    data = TaggerDataConfig(batch_size=args.batch_size)
    vocab = TaggerVocab.build(tokens, tags, data)
    encoded = encode(vocab, tokens, tags)
    preset = dict(PRESETS["best"].model)
    if args.quick:
        preset |= {"word_dim": 16, "char_hidden": 8, "hidden_size": 16}
    config = TaggerConfig(num_words=len(vocab.words), num_chars=len(vocab.chars),
                          tags=tuple(vocab.tags), **preset)
    torch.manual_seed(0)
    model = SequenceTagger(config)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, fused=True)
    train_batches = list(TaggerBatcher(vocab, encoded, args.batch_size, shuffle=True, seed=0))
    batched = list(TaggerBatcher(vocab, encoded, 64, shuffle=False))
    single = list(TaggerBatcher(vocab, encoded, 1, shuffle=False))

    def train_pass() -> None:
        model.train()
        for batch in train_batches:
            loss = model.loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    @torch.no_grad()
    def tag(batches) -> None:
        model.eval()
        for batch in batches:
            model.decode(batch)

    with torch.no_grad():
        model.eval()
        emissions = [(model(b), model.mask(b)) for b in batched]
        one_by_one = [(model(b), model.mask(b)) for b in single]

    def step(optimizer, times: int = 20) -> None:
        for _ in range(times):
            optimizer.step()

    def viterbi(items) -> None:
        for e, m in items:
            model.crf.decode(e, m)

    big = SequenceTagger(replace(config, num_words=17_494))
    for p in big.parameters():
        p.grad = torch.randn_like(p)
    adam_foreach = torch.optim.Adam(big.parameters(), 1e-3, foreach=True)
    adam_fused = torch.optim.Adam(big.parameters(), 1e-3, fused=True)

    timings = interleaved({
        "training": train_pass,
        "tagging, batches of 64": lambda: tag(batched),
        "tagging, one sentence at a time": lambda: tag(single),
        "Viterbi alone, batches of 64": lambda: viterbi(emissions),
        "Viterbi alone, one sentence at a time": lambda: viterbi(one_by_one),
        "Adam step (17,494-word model), foreach": lambda: step(adam_foreach),
        "Adam step (17,494-word model), fused": lambda: step(adam_fused),
    }, repeats)
    rows, results = [], {}
    for name, timing in timings.items():
        if name.startswith("Adam"):
            rows.append([name, f"{timing.median / 20 * 1e3:.1f} ms per step", "—"])
            results[name] = {"ms_per_step": timing.median / 20 * 1e3, "samples": timing.samples}
            continue
        rate = n / timing.median
        rows.append([name, f"{timing.median:.2f}", f"{rate:,.0f}"])
        results[name] = {"median_s": timing.median, "sentences_per_s": rate,
                         "samples": timing.samples, "contended_rounds": timing.contended}
    tokens_total = sum(len(s) for s in tokens)
    print(f"{n} sentences ({tokens_total:,} tokens) from {source}; {threads} thread(s); "
          f"training batch {args.batch_size}; medians of {repeats}")
    print(markdown_table(["what", "seconds per pass", "sentences/s"], rows))
    path = write_results("tagger", {"sentences": n, "tokens": tokens_total, "source": source,
                                    "batch_size": args.batch_size, "config": config.to_dict(),
                                    "results": results}, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
