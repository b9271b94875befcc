"""A trained language model with and without the continuous cache (Grave et al. 2017),
its three settings tuned on one half of the validation text and measured on the other.

    .venv/bin/python bench/lm_cache.py RUN_DIR --valid ptb.valid.txt.gz [--out FILE]

The validation stream is cut into B rows (the model's eval batch size) as in ``recur
evaluate``. The cache settings (size, θ, λ) are chosen on the first half of every row and
measured on the second half, whose positions that search never scored (the cache there
still reads the first half's outputs, as it reads any preceding text), then the other way
round; the full-stream number scores each half with the settings tuned on the other one.
The model's own perplexity is reported on the same tokens.
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
    halves = {"first": slice(0, half), "second": slice(half, None)}
    fits, crossed = {}, torch.empty_like(log_p)
    for name, other in (("first", "second"), ("second", "first")):
        tune, held = halves[name], halves[other]
        best, tune_loss = fit_cache(features[:, tune], targets[:, tune], log_p[:, tune])
        mixed = cache_log_probs(features, targets, log_p, best)      # (B, L)
        crossed[:, held] = mixed[:, held]
        fits[f"tuned_on_{name}_half"] = {
            "cache": {"size": best.size, "theta": best.theta, "lambda": best.lam},
            "tune_tokens": targets[:, tune].numel(),
            "tune": {"model": perplexity(log_p[:, tune]), "cache": math.exp(tune_loss)},
            "held_out": {"model": perplexity(log_p[:, held]),
                         "cache": perplexity(mixed[:, held])},
            "full": {"model": perplexity(log_p), "cache": perplexity(mixed)},
        }
    report = {
        "run": str(args.run),
        "valid": str(args.valid),
        "rows": B,
        "tokens": targets.numel(),
        **fits,
        # every token scored with the settings tuned on the other half
        "cross_fitted_full": {"model": perplexity(log_p), "cache": perplexity(crossed)},
        "seconds": time.perf_counter() - started,
        "command": "python " + " ".join(sys.argv),
    }
    path = write_results("lm-cache", report, args.out)
    for name in ("first", "second"):
        fit = fits[f"tuned_on_{name}_half"]
        print(f"tuned on the {name} half: {fit['cache']}; held-out half: model "
              f"{fit['held_out']['model']:.2f}, with cache {fit['held_out']['cache']:.2f}")
    print(f"full stream, each half scored with the other half's settings: model "
          f"{report['cross_fitted_full']['model']:.2f}, with cache "
          f"{report['cross_fitted_full']['cache']:.2f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
