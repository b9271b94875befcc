"""Language-model throughput: training tokens/s and generation tokens/s, fp32 and bf16,
and generation with the ONNX export under onnxruntime.

    .venv/bin/python bench/lm.py [--threads 1] [--repeats 3] [--quick] [--out FILE]
                                 [--generate-only] [--shape NAME]

Training: one TBPTT step (forward over a B x k window, cross-entropy, backward, Adam) of
``recur.models.LanguageModel`` with the char preset's shape (and the word preset's with
V = 10k), tokens/s = B·k / median step time. Generation: ``recur.generation.sample``
drawing tokens one at a time for B = 1 (the CLI's case), state carried (O(1) per token),
with three step functions: torch eager fp32 (``LanguageModel.step``), torch bf16 and
onnxruntime running ``recur export``'s single-step graph (``OnnxLanguageModelStep.step``,
what ``recur generate --backend onnx`` calls) — the same decoder for all three.
bf16 is torch.autocast on CPU (oneDNN bf16 LSTM where the CPU has AVX-512 BF16 / AMX).
Contenders are interleaved round by round (bench/common.py), so drift hits all alike.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import tempfile
import time

import torch
from common import interleaved, markdown_table, set_threads, write_results

from recur.generation import sample
from recur.models.language_model import LanguageModel, LanguageModelConfig

SHAPES = {  # name: (model config, B, k)
    "char 1x512 (V 65)": ({"vocab_size": 65, "embed_dim": 64, "hidden_size": 512,
                           "num_layers": 1}, 32, 128),
    "char 2x512 (V 65)": ({"vocab_size": 65, "embed_dim": 128, "hidden_size": 512,
                           "num_layers": 2}, 32, 128),
    "word 2x256 tied (V 10k)": ({"vocab_size": 10_001, "embed_dim": 256, "hidden_size": 256,
                                 "num_layers": 2, "tie_weights": True}, 32, 35),
}
QUICK = {"tiny (V 65)": ({"vocab_size": 65, "embed_dim": 16, "hidden_size": 32,
                          "num_layers": 1}, 4, 16)}


def autocast(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model: LanguageModel, optimizer, tokens, precision: str):
    def run():
        with autocast(precision):
            logits, _ = model(tokens[:, :-1])
        loss = model.loss(logits, tokens[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return run


def generate(step, n: int, precision: str = "fp32", cpu_seconds: list[float] | None = None):
    """Sample ``n`` tokens at B = 1; appends the process CPU time of each call to
    ``cpu_seconds`` (on a shared machine wall time also counts the waits for a core)."""
    def run():
        start = time.process_time()
        with torch.no_grad(), autocast(precision):
            for _ in sample(step, None, 0, batch_size=1, max_new_tokens=n,
                            generator=torch.Generator().manual_seed(0)):
                pass
        if cpu_seconds is not None:
            cpu_seconds.append(time.process_time() - start)
    return run


GENERATORS = ("fp32", "bf16", "onnxruntime")


def markdown(document: dict, view: str | None = None) -> str:
    """The table of an lm.json document (printed by the run; ``recur bench --write-docs``)."""
    if view is not None:
        raise ValueError(f"lm has no view {view!r}; it renders one table")
    records = document["results"]
    generators = [g for g in GENERATORS if any(f"generate_tokens_per_s_{g}" in r for r in records)]

    def train(r: dict, p: str) -> str:
        key = f"train_tokens_per_s_{p}"
        return f"{r[key]:,.0f}" if key in r else "-"

    def generate(r: dict, g: str) -> str:
        key = f"generate_tokens_per_s_{g}"
        if key not in r:
            return "-"
        return f"{r[key]:,.0f} ({r[f'generate_tokens_per_cpu_s_{g}']:,.0f})"

    rows = [[r["shape"], f"{r['batch']}x{r['window']}", *(train(r, p) for p in ("fp32", "bf16")),
             *(generate(r, g) for g in generators)] for r in records]
    return markdown_table(["model", "B x k", "train tok/s fp32", "train tok/s bf16",
                           *(f"generate tok/s {g} (B=1; per CPU-s)" for g in generators)], rows)


def onnx_step(model: LanguageModel, folder: str):
    """``recur export``'s step graph of ``model`` under onnxruntime, as a decoder step."""
    from recur.export import OnnxLanguageModelStep, export_language_model_step

    return OnnxLanguageModelStep(export_language_model_step(model, f"{folder}/lm.onnx").path).step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gen-tokens", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a tiny shape (smoke test)")
    parser.add_argument("--out", help="results JSON (default bench/results/lm.json)")
    parser.add_argument("--generate-only", action="store_true", help="skip the training rows")
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append",
                        help="only this shape (repeatable; default all)")
    parser.add_argument("--no-onnx", action="store_true", help="skip onnxruntime generation")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    shapes = QUICK if args.quick else {n: SHAPES[n] for n in args.shape or SHAPES}
    use_onnx = not args.no_onnx and importlib.util.find_spec("onnxruntime") is not None
    generators = ("fp32", "bf16") + (("onnxruntime",) if use_onnx else ())
    results = []
    for name, (config, B, k) in shapes.items():
        torch.manual_seed(0)
        model = LanguageModel(LanguageModelConfig(**config))
        record = {"shape": name, "batch": B, "window": k, "config": config}
        if not args.generate_only:
            optimizer = torch.optim.Adam(model.parameters(), 1e-3)
            tokens = torch.randint(config["vocab_size"], (B, k + 1))
            contenders = {}
            for precision in ("fp32", "bf16"):
                contenders[f"train {precision}"] = train_step(model.train(), optimizer, tokens,
                                                              precision)
            timing = interleaved(contenders, args.repeats, warmup=1)
            for precision in ("fp32", "bf16"):
                record[f"train_tokens_per_s_{precision}"] = B * k / timing[f"train {precision}"].median
        model.eval()
        with tempfile.TemporaryDirectory(prefix="recur-bench-lm-") as tmp:
            steps = {"fp32": (model.step, "fp32"), "bf16": (model.step, "bf16")}
            if use_onnx:
                steps["onnxruntime"] = (onnx_step(model, tmp), "fp32")
            cpu: dict[str, list[float]] = {g: [] for g in steps}
            gen = interleaved({g: generate(step, args.gen_tokens, p, cpu[g])
                               for g, (step, p) in steps.items()}, args.repeats, warmup=1)
        for g in generators:
            record[f"generate_tokens_per_s_{g}"] = args.gen_tokens / gen[g].median
            record[f"generate_tokens_per_cpu_s_{g}"] = args.gen_tokens / statistics.median(cpu[g])
            record[f"generate_rounds_contended_{g}"] = gen[g].contended
        results.append(record)
    payload = {"threads": threads, "repeats": args.repeats, "gen_tokens": args.gen_tokens,
               "command": " ".join(["bench/lm.py", *(argv if argv is not None else sys.argv[1:])]),
               "results": results}
    print(markdown(payload))
    if not args.quick or args.out:
        print(f"wrote {write_results('lm', payload, args.out)}")
    return payload


if __name__ == "__main__":
    main()
