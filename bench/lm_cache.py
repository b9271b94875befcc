"""A trained language model with and without the continuous cache (Grave et al. 2017),
its three settings tuned on one half of the validation text and measured on the other.

    .venv/bin/python bench/lm_cache.py RUN_DIR --valid ptb.valid.txt.gz [--out FILE]

The validation stream is cut into B rows (the model's eval batch size) as in ``recur
evaluate``. The cache settings (size, θ, λ) are chosen on the first half of every row and
the perplexities are reported on the second half, whose positions the search never scored
(the cache there still reads the first half's outputs, as it reads any preceding text).
The model's own perplexity is reported on the same tokens, and on the full stream with the
settings found (those tokens include the tuning half, so that number is optimistic).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from common import set_threads, write_results

from recur.models.neural_cache import cache_log_probs, fit_cache
from recur.tasks.language_model import TrainedLanguageModel, read_text


def perplexity(log_p: torch.Tensor) -> float:
    return math.exp(-float(log_p.mean()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run or checkpoint folder of a language model")
    parser.add_argument("--valid", required=True, help="validation text")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    started = time.perf_counter()
    model = TrainedLanguageModel.load(args.run)
    ids = model.codec.encode_stream(read_text(args.valid))
    B = model.data.eval_batch_size
    features, targets, log_p = model.cache_inputs(ids, B)            # (B, L, E), (B, L) ×2
    half = targets.shape[1] // 2
    tune = (features[:, :half], targets[:, :half], log_p[:, :half])
    best, tune_loss = fit_cache(*tune)
    mixed = cache_log_probs(features, targets, log_p, best)          # (B, L)
    report = {
        "run": str(args.run),
        "valid": str(args.valid),
        "rows": B,
        "tokens": targets.numel(),
        "tune_tokens": targets[:, :half].numel(),
        "report_tokens": targets[:, half:].numel(),
        "cache": {"size": best.size, "theta": best.theta, "lambda": best.lam},
        "tune_half": {"model": perplexity(log_p[:, :half]), "cache": math.exp(tune_loss)},
        "report_half": {"model": perplexity(log_p[:, half:]),
                        "cache": perplexity(mixed[:, half:])},
        "full": {"model": perplexity(log_p), "cache": perplexity(mixed)},
        "seconds": time.perf_counter() - started,
        "command": "python " + " ".join(sys.argv),
    }
    path = write_results("lm-cache", report, args.out)
    print(f"cache size {best.size}, theta {best.theta}, lambda {best.lam} (tuned on "
          f"{report['tune_tokens']:,} tokens)")
    for part in ("tune_half", "report_half", "full"):
        print(f"{part:12} model {report[part]['model']:8.2f}   with cache "
              f"{report[part]['cache']:8.2f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
