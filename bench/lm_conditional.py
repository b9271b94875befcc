"""Conditional generation, measured: does a label-conditioned language model write what its
label says?

For a conditional LM (``recur train lm --labelled``) two measurements on reviews it never
trained on, and on text it generates:

1. **The label's information.** Every held-out opening is scored under its own label's
   starting state and under the other label's. With the true label the loss is lower by
   the information the label carries about the opening (nats per opening), and the true
   label fits better for most openings.
2. **A judge.** Openings sampled from each label are classified by a separately trained
   sentiment model (``recur train sentiment``): the share it calls positive, per
   condition, next to the same judge on real held-out openings of each label, decoded
   from the same tokens. That reference is the most it can tell apart at this length.

Usage:
    python bench/lm_conditional.py runs/imdb-openings-bpe --judge runs/imdb-640-e6 \\
        --data ../shared/datasets/imdb/train.jsonl.gz --samples 200 \\
        --out bench/results/lm-conditional-imdb.json

``--data`` must be the labelled file the LM was trained on without ``--valid``: the held-
out openings are its stratified 10% validation split (``split_train_valid``, seed 0).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import set_threads  # noqa: E402

from recur.data.text import split_train_valid  # noqa: E402
from recur.tasks.language_model import TextBatches, TrainedLanguageModel, encode_openings  # noqa: E402
from recur.tasks.sentiment import SentimentModel, read_sentiment  # noqa: E402


@torch.no_grad()
def opening_losses(lm: TrainedLanguageModel, sequences: list[list[int]], conditions: list[int],
                   batch_size: int = 64) -> torch.Tensor:
    """Summed loss (nats) of each opening (N,) started from ``conditions``' states."""
    model, out = lm.model, []
    for batch in TextBatches(sequences, conditions, batch_size, shuffle=False):
        features, _ = model.features(batch.inputs, model.condition_state(batch.conditions))
        log_probs = model.log_probs(features)                                   # (B, T, V)
        mask = batch.targets != -100
        picked = log_probs.gather(-1, batch.targets.clamp(min=0).unsqueeze(-1))[..., 0]
        out.append(-(picked * mask).sum(1))
    return torch.cat(out)


def judged_positive(judge: SentimentModel, texts: list[str]) -> dict[str, float]:
    """The judge's mean P(positive) and the share it labels positive."""
    predictions = judge.predict(texts)
    positive = judge.label_names.index("positive")
    probs = [p.probabilities[positive] for p in predictions]
    return {"mean_p_positive": sum(probs) / len(probs),
            "share_positive": sum(p > 0.5 for p in probs) / len(probs), "n": len(probs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="run folder of a conditional language model")
    parser.add_argument("--judge", required=True, help="run folder of a sentiment classifier")
    parser.add_argument("--data", required=True, help="the labelled file the LM trained on")
    parser.add_argument("--samples", type=int, default=200, help="openings generated per label")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", help="JSON results file")
    args = parser.parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    started = time.perf_counter()

    lm = TrainedLanguageModel.load(args.model)
    if lm.label_names is None:
        raise SystemExit(f"{args.model} is not a conditional language model")
    judge = SentimentModel.load(args.judge)
    _, valid = split_train_valid(read_sentiment(args.data), lm.data.valid_fraction, 0)
    if list(valid.label_names) != list(lm.label_names):
        raise SystemExit(f"labels differ: data {valid.label_names}, model {lm.label_names}")
    sequences = encode_openings(lm.codec, valid.texts, lm.data.max_length)
    labels = list(valid.labels)
    C = len(lm.label_names)

    # 1. the label's information: each opening under its own and under every other label
    own = opening_losses(lm, sequences, labels)
    others = torch.stack([opening_losses(lm, sequences, [(y + k) % C for y in labels])
                          for k in range(1, C)]).min(0).values
    tokens = sum(len(s) - 1 for s in sequences)
    information = {
        "openings": len(sequences), "tokens": tokens,
        "loss_true_label": float(own.sum()) / tokens,
        "loss_other_label": float(others.sum()) / tokens,
        "nats_per_opening": float((others - own).mean()),
        "share_true_label_fits_better": float((own < others).float().mean()),
    }
    print(f"held-out openings ({len(sequences):,}, {tokens:,} tokens): loss "
          f"{information['loss_true_label']:.4f} nats/token with the true label, "
          f"{information['loss_other_label']:.4f} with the other; the label is worth "
          f"{information['nats_per_opening']:.2f} nats per opening and fits better for "
          f"{100 * information['share_true_label_fits_better']:.1f}% of them")

    # 2. the judge on real held-out openings (decoded from the same tokens) and on samples
    real = {name: judged_positive(judge, [lm.codec.decode(s[1:]) for s, y in
                                          zip(sequences, labels, strict=True) if y == c])
            for c, name in enumerate(lm.label_names)}
    generated, examples = {}, {}
    for name in lm.label_names:
        texts = ["".join(lm.generate("", length=lm.data.max_length, temperature=args.temperature,
                                     seed=seed, stop_at_eos=True, condition=name))
                 for seed in range(args.samples)]
        generated[name] = judged_positive(judge, texts)
        examples[name] = texts[:3]
    for kind, table in (("real held-out", real), ("generated", generated)):
        for name, row in table.items():
            print(f"{kind:>13} openings, label {name:>8}: judged positive "
                  f"{100 * row['share_positive']:5.1f}% (mean P {row['mean_p_positive']:.3f}, "
                  f"n {row['n']})")
    for name, texts in examples.items():
        print(f"\n{name}, seeds 0-2 (temperature {args.temperature}):")
        for text in texts:
            print("  " + text.strip())

    if args.out:
        result = {
            "model": args.model, "judge": args.judge, "data": args.data,
            "samples": args.samples, "temperature": args.temperature,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.machine(), "seconds": time.perf_counter() - started,
            "label_information": information, "judge_on_real_openings": real,
            "judge_on_generated_openings": generated, "examples": examples,
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
