"""Load test of ``recur serve`` on loopback: throughput and p50/p99 latency of predict.

    .venv/bin/python bench/serve_load.py [--requests 400] [--concurrency 1 8 32]
                                         [--max-seconds 60] [--model DIR]

Starts ``recur serve`` in a subprocess on a free 127.0.0.1 port (one torch thread), with
the seed IMDB classifier's architecture (``ClassifierConfig.seed()``: Embedding 1001×128 →
LSTM 64 → Dense 64 → Dense 1, 181,761 parameters, texts truncated to 100 tokens) fitted
for one epoch on synthetic reviews — or the checkpoint ``--model`` names. Then, for each
concurrency level C, C client tasks (httpx, keep-alive) send one review of ~230 words per
request until ``--requests`` have been answered or ``--max-seconds`` have passed. Every
request goes to 127.0.0.1 only; the loop is bounded in count and time, and the server is
stopped at the end. The same reviews are also timed in-process (``SentimentModel.predict``
with 1 and with 32 texts per call) as the no-HTTP reference.

Writes bench/results/serve_load.json and prints a Markdown table. Generation (/generate)
is measured once a language model can be served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import RESULTS_DIR, machine_info

HOST = "127.0.0.1"  # loopback only


def synthetic_reviews(n: int, seed: int) -> list[str]:
    """Reviews of ~230 words from a 1,500-word vocabulary (fills the 1,000-token vocabulary)."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(1500)] + ["great", "awful"] * 50
    return [" ".join(rng.choices(words, k=rng.randint(150, 300))) for _ in range(n)]


def build_model(folder: Path) -> Path:
    from recur.data.text import LabelledTexts
    from recur.tasks.sentiment import PRESETS, train

    texts = synthetic_reviews(352, 0)
    labels = [int("great" in t.split()[:50]) for t in texts]
    names = ["negative", "positive"]
    data = LabelledTexts(texts[:320], labels[:320], names)
    valid = LabelledTexts(texts[320:], labels[320:], names)
    preset = PRESETS["seed"]
    train(data, valid, folder, preset.data, dict(preset.model),
          replace(preset.training, epochs=1, quiet=True), say=lambda *a: None)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, max_pending: int) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "recur.cli", "serve", f"bench={model}", "--host", HOST,
         "--port", str(port), "--max-pending", str(max_pending)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("recur serve exited: " + process.stderr.read().decode()[-2000:])
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"recur serve did not answer /health within {timeout} s")


async def load_level(url: str, reviews: list[str], concurrency: int, requests: int,
                     max_seconds: float, warmup: int = 20) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        for i in range(warmup):
            (await client.post("/v1/models/bench/predict", json={"texts": [reviews[i]]})).raise_for_status()
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        issued = 0
        start = time.perf_counter()
        deadline = start + max_seconds

        async def worker() -> None:
            nonlocal issued
            while issued < requests and time.perf_counter() < deadline:
                text = reviews[issued % len(reviews)]
                issued += 1
                t0 = time.perf_counter()
                response = await client.post("/v1/models/bench/predict", json={"texts": [text]})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {"concurrency": concurrency, "answered": len(latencies), "wall_s": wall,
            "throughput_rps": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "statuses": statuses}


def direct_reference(model: Path, reviews: list[str], seconds: float = 5.0) -> list[dict]:
    import torch

    from recur.tasks.sentiment import SentimentModel

    torch.set_num_threads(1)
    net = SentimentModel.load(model)
    rows = []
    for per_call in (1, 32):
        net.predict(reviews[:per_call])
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            net.predict(reviews[done % 200:done % 200 + per_call])
            done += per_call
        wall = time.perf_counter() - start
        rows.append({"texts_per_call": per_call, "texts_per_s": done / wall,
                     "ms_per_call": 1000 * wall / (done / per_call)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint to serve (default: the seed architecture "
                        "fitted for one epoch on synthetic reviews)")
    parser.add_argument("--requests", type=int, default=400, help="requests per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-seconds", type=float, default=60, help="time cap per level")
    parser.add_argument("--out", default=str(RESULTS_DIR / "serve_load.json"))
    args = parser.parse_args()
    if args.requests < 1 or args.max_seconds <= 0 or min(args.concurrency) < 1:
        parser.error("--requests, --max-seconds and --concurrency must be positive")

    with tempfile.TemporaryDirectory(prefix="recur-serve-load-") as tmp:
        model = Path(args.model) if args.model else build_model(Path(tmp) / "seed")
        reviews = synthetic_reviews(500, 1)
        port = free_port()
        url = f"http://{HOST}:{port}"
        process = start_server(model, port, max_pending=max(64, 2 * max(args.concurrency)))
        try:
            asyncio.run(wait_healthy(url, process))
            levels = [asyncio.run(load_level(url, reviews, c, args.requests, args.max_seconds))
                      for c in args.concurrency]
        finally:
            process.terminate()
            process.wait(timeout=30)
        reference = direct_reference(model, reviews)

    result = {"machine": machine_info(), "server_threads": 1, "levels": levels,
              "direct": reference, "command": " ".join(["bench/serve_load.py", *sys.argv[1:]])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| concurrency | requests answered | throughput (req/s) | p50 latency (ms) "
          "| p99 latency (ms) | non-200 |")
    print("|---|---|---|---|---|---|")
    for r in levels:
        bad = sum(v for k, v in r["statuses"].items() if k != 200)
        print(f"| {r['concurrency']} | {r['answered']} | {r['throughput_rps']:.1f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {bad} |")
    for r in reference:
        print(f"in-process SentimentModel.predict, {r['texts_per_call']} text(s) per call: "
              f"{r['texts_per_s']:.1f} texts/s ({r['ms_per_call']:.2f} ms per call)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
