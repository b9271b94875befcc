"""Load test of ``recur serve`` on loopback: throughput and p50/p99 latency of predict and
of streamed generation.

    .venv/bin/python bench/serve_load.py [--routes predict generate] [--requests 400]
                                         [--concurrency 1 8 32] [--max-seconds 60]
                                         [--model DIR] [--gen-requests 64] [--gen-tokens 64]

Starts ``recur serve`` in a subprocess on a free 127.0.0.1 port (one torch thread).

predict: the seed IMDB classifier's architecture (``ClassifierConfig.seed()``: Embedding
1001×128 → LSTM 64 → Dense 64 → Dense 1, 181,761 parameters, texts truncated to 100
tokens) fitted for one epoch on synthetic reviews — or the checkpoint ``--model`` names.
For each concurrency level C, C keep-alive connections (a bare asyncio HTTP/1.1 client)
send one review of ~230 words per request until ``--requests`` have been answered or
``--max-seconds`` have passed — once with micro-batching (the default limits) and once
without (``--max-batch-size 1``: one forward pass per request). The same reviews are also
timed in-process (``predict`` with 1 and with 32 texts per call), with torch and with the
ONNX export under onnxruntime, as the no-HTTP reference.

generate: a character LM of the ``char`` preset's shape (Embedding 65×64 → LSTM 512 →
Linear 512→65, 1,219,969 parameters; one optimizer step on generated text — the weights do
not change the cost) on ``/generate``: C connections each send requests for
``--gen-tokens`` sampled tokens (temperature 1, a seed per request) and read the
server-sent events as they arrive, until ``--gen-requests`` have been answered or
``--max-seconds`` have passed. Reports requests/s, generated tokens/s over all streams,
time to the first token and to the ``done`` event (p50/p99).

Every request goes to 127.0.0.1 only; each level is bounded in count and time, and the
server is stopped at the end. Writes bench/results/serve_load.json and prints Markdown
tables.
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


def build_language_model(folder: Path) -> Path:
    """The char preset's LM shape with a 65-character vocabulary, after one optimizer step."""
    import string

    from recur.tasks.language_model import PRESETS, train

    chars = (string.ascii_letters + string.digits + " \n.,;:!?'-")[:65]
    rng = random.Random(0)
    text = "".join(rng.choice(chars) for _ in range(20_000))
    preset = PRESETS["char"]
    training = replace(preset.training, epochs=1, max_steps=1, time_budget_min=None,
                       schedule_by_time=False, schedule="constant", warmup_steps=0,
                       quiet=True, log_every=1)
    train(text, text[:4000], folder, preset.data, dict(preset.model), training,
          say=lambda *a: None)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, max_pending: int, max_batch_size: int,
                 name: str = "bench", request_timeout_s: float = 30) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "recur.cli", "serve", f"{name}={model}", "--host", HOST,
         "--port", str(port), "--max-pending", str(max_pending),
         "--max-batch-size", str(max_batch_size), "--request-timeout-s", str(request_timeout_s)],
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


async def post_loop(port: int, next_text, latencies: list[float], statuses: dict[int, int],
                    deadline: float) -> None:
    """One keep-alive connection sending predict requests until ``next_text`` says stop.

    A bare HTTP/1.1 client on asyncio streams: httpx in the client process used more CPU
    per request than the server (measured: it capped the load at 40-65 req/s, with the
    server seeing mean batches of 1.2 at concurrency 32), so it measured itself.
    """
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline and (text := next_text()) is not None:
            body = json.dumps({"texts": [text]}).encode()
            t0 = time.perf_counter()
            writer.write(b"POST /v1/models/bench/predict HTTP/1.1\r\nHost: bench\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            length = next(int(line.split(":")[1]) for line in head
                          if line.lower().startswith("content-length:"))
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append(time.perf_counter() - t0)
    finally:
        writer.close()


async def load_level(url: str, port: int, reviews: list[str], concurrency: int, requests: int,
                     max_seconds: float, warmup: int = 20) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for i in range(warmup):
            response = await client.post("/v1/models/bench/predict", json={"texts": [reviews[i]]})
            response.raise_for_status()
        before = (await client.get("/health")).json()["batches"]["bench"]
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        issued = 0

        def next_text() -> str | None:
            nonlocal issued
            if issued >= requests:
                return None
            issued += 1
            return reviews[issued % len(reviews)]

        start = time.perf_counter()
        await asyncio.gather(*(post_loop(port, next_text, latencies, statuses, start + max_seconds)
                               for _ in range(concurrency)))
        wall = time.perf_counter() - start
        after = (await client.get("/health")).json()["batches"]["bench"]
    runs = after["runs"] - before["runs"]
    latencies.sort()
    return {"concurrency": concurrency, "answered": len(latencies), "wall_s": wall,
            "throughput_rps": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "statuses": statuses,
            "mean_batch": (after["requests"] - before["requests"]) / max(1, runs)}


async def generate_loop(port: int, next_body, records: list[dict], statuses: dict[int, int],
                        deadline: float) -> None:
    """One keep-alive connection sending /generate requests and reading each chunked
    server-sent-event stream as it arrives, until ``next_body`` says stop."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline and (body := next_body()) is not None:
            t0 = time.perf_counter()
            writer.write(b"POST /v1/models/lm/generate HTTP/1.1\r\nHost: bench\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
                       for line in head[1:] if ":" in line}
            statuses[status] = statuses.get(status, 0) + 1
            if headers.get("transfer-encoding") != "chunked":
                await reader.readexactly(int(headers.get("content-length", 0)))
                continue
            tokens, first, ok, error = 0, None, False, False
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                events = chunk.count(b"data: {\"token\"")
                if events and first is None:
                    first = time.perf_counter() - t0
                tokens += events
                ok = ok or b"event: done" in chunk
                error = error or b"event: error" in chunk
            if status == 200 and ok:
                records.append({"latency": time.perf_counter() - t0, "first": first,
                                "tokens": tokens})
            elif error:  # e.g. request_timeout_s reached mid-stream
                statuses["stream_error"] = statuses.get("stream_error", 0) + 1
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; 0.0 elsewhere).
    On a shared machine wall time also counts the server's waits for a core."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def generate_level(url: str, port: int, concurrency: int, requests: int, tokens: int,
                         max_seconds: float, server_pid: int, warmup: int = 2) -> dict:
    import httpx

    def body(seed: int) -> bytes:
        return json.dumps({"prompt": "The ", "max_new_tokens": tokens, "temperature": 1.0,
                           "seed": seed}).encode()

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for i in range(warmup):
            response = await client.post("/v1/models/lm/generate", content=body(i),
                                         headers={"Content-Type": "application/json"})
            response.raise_for_status()
    records: list[dict] = []
    statuses: dict[int, int] = {}
    issued = 0

    def next_body() -> bytes | None:
        nonlocal issued
        if issued >= requests:
            return None
        issued += 1
        return body(issued)

    start, cpu_before = time.perf_counter(), cpu_seconds(server_pid)
    await asyncio.gather(*(generate_loop(port, next_body, records, statuses, start + max_seconds)
                           for _ in range(concurrency)))
    wall, server_cpu = time.perf_counter() - start, cpu_seconds(server_pid) - cpu_before
    latencies = [r["latency"] for r in records] or [float("nan")]
    firsts = [r["first"] for r in records if r["first"] is not None] or [float("nan")]
    generated = sum(r["tokens"] for r in records)
    return {"concurrency": concurrency, "answered": len(records), "wall_s": wall,
            "tokens_per_request": tokens, "tokens_received": generated,
            "throughput_rps": len(records) / wall, "tokens_per_s": generated / wall,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 0.99),
            "first_token_p50_ms": 1000 * statistics.median(firsts),
            "first_token_p99_ms": 1000 * percentile(firsts, 0.99),
            "server_cpu_s": server_cpu,
            "server_cpu_ms_per_token": 1000 * server_cpu / max(1, generated),
            "statuses": statuses}


def run_generate(folder: Path, args) -> list[dict]:
    model = build_language_model(folder / "lm")
    port = free_port()
    url = f"http://{HOST}:{port}"
    process = start_server(model, port, max(64, 2 * max(args.concurrency)), 64, name="lm",
                           request_timeout_s=args.gen_timeout)
    levels = []
    try:
        asyncio.run(wait_healthy(url, process))
        for c in args.concurrency:
            levels.append(asyncio.run(generate_level(url, port, c, args.gen_requests,
                                                     args.gen_tokens, args.max_seconds,
                                                     process.pid)))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return levels


def direct_reference(model: Path, reviews: list[str], onnx_file: Path, rounds: int = 7) -> list[dict]:
    """In-process ``predict`` (tokenize + batch + forward), torch vs onnxruntime, with 1 and
    32 texts per call: medians of ``rounds`` interleaved rounds of 64 texts each."""
    import torch

    from recur.export import OnnxSentimentModel, export_classifier
    from recur.tasks.sentiment import SentimentModel

    torch.set_num_threads(1)
    backends = {"torch": SentimentModel.load(model)}
    export_classifier(backends["torch"].model, onnx_file, check=False)
    backends["onnxruntime"] = OnnxSentimentModel.load(model, onnx=onnx_file)
    rows = []
    for per_call in (1, 32):
        samples: dict[str, list[float]] = {name: [] for name in backends}
        for _ in range(rounds):
            for name, backend in backends.items():
                start = time.perf_counter()
                for i in range(0, 64, per_call):
                    backend.predict(reviews[i:i + per_call])
                samples[name].append((time.perf_counter() - start) / 64)
        for name, times in samples.items():
            ms = 1000 * statistics.median(times)
            rows.append({"backend": name, "texts_per_call": per_call, "ms_per_text": ms,
                         "texts_per_s": 1000 / ms})
    return rows


def markdown(document: dict, view: str | None = None) -> str:
    """The tables of a serve_load.json document (``recur bench --write-docs``); no views."""
    if view is not None:
        raise ValueError(f"serve_load has no view {view!r}; it renders one table")
    lines = ["| micro-batching | concurrency | requests answered | throughput (req/s) "
             "| p50 latency (ms) | p99 latency (ms) | mean batch | non-200 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in document["levels"]:
        bad = sum(v for k, v in r["statuses"].items() if str(k) != "200")  # JSON keys are str
        lines.append(f"| {r['micro_batching']} | {r['concurrency']} | {r['answered']} | "
                     f"{r['throughput_rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['mean_batch']:.1f} | {bad} |")
    lines.append("")
    for r in document["direct"]:
        lines.append(f"In-process predict ({r['backend']}), {r['texts_per_call']} text(s) per "
                     f"call: {r['ms_per_text']:.2f} ms per text ({r['texts_per_s']:.0f} texts/s).  ")
    load = document["load_average_1min"]
    lines.append(f"Load average (1 min) before / after: {load['before']:.1f} / {load['after']:.1f}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", nargs="+", choices=["predict", "generate"],
                        default=["predict", "generate"])
    parser.add_argument("--model", help="classifier checkpoint to serve for predict (default: "
                        "the seed architecture fitted for one epoch on synthetic reviews)")
    parser.add_argument("--requests", type=int, default=400, help="predict requests per level")
    parser.add_argument("--gen-requests", type=int, default=64,
                        help="generate requests per level")
    parser.add_argument("--gen-tokens", type=int, default=64, help="tokens per generate request")
    parser.add_argument("--gen-timeout", type=float, default=30,
                        help="the generate server's --request-timeout-s (a stream that takes "
                        "longer ends with an error event, counted as stream_error)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-seconds", type=float, default=60, help="time cap per level")
    parser.add_argument("--out", default=str(RESULTS_DIR / "serve_load.json"))
    args = parser.parse_args()
    if min(args.requests, args.gen_requests, args.gen_tokens) < 1 or args.max_seconds <= 0 \
            or min(args.concurrency) < 1:
        parser.error("--requests, --gen-requests, --gen-tokens, --max-seconds and "
                     "--concurrency must be positive")

    load_before = os.getloadavg()
    levels, reference, generate_levels = [], [], []
    with tempfile.TemporaryDirectory(prefix="recur-serve-load-") as tmp:
        if "predict" in args.routes:
            model = Path(args.model) if args.model else build_model(Path(tmp) / "seed")
            reviews = synthetic_reviews(500, 1)
            for batching, max_batch_size in (("on", 64), ("off", 1)):
                port = free_port()
                url = f"http://{HOST}:{port}"
                process = start_server(model, port, max(64, 2 * max(args.concurrency)),
                                       max_batch_size)
                try:
                    asyncio.run(wait_healthy(url, process))
                    for c in args.concurrency:
                        level = asyncio.run(load_level(url, port, reviews, c, args.requests,
                                                       args.max_seconds))
                        levels.append({"micro_batching": batching, **level})
                finally:
                    process.terminate()
                    process.wait(timeout=30)
            reference = direct_reference(model, reviews, Path(tmp) / "model.onnx")
        if "generate" in args.routes:
            generate_levels = run_generate(Path(tmp), args)

    result = {"benchmark": "serve_load", "machine": machine_info(), "server_threads": 1, "levels": levels,
              "generate_levels": generate_levels,
              "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
              "direct": reference, "command": " ".join(["bench/serve_load.py", *sys.argv[1:]])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if levels:
        print("| micro-batching | concurrency | requests answered | throughput (req/s) "
              "| p50 latency (ms) | p99 latency (ms) | mean batch | non-200 |")
        print("|---|---|---|---|---|---|---|---|")
    for r in levels:
        bad = sum(v for k, v in r["statuses"].items() if k != 200)
        print(f"| {r['micro_batching']} | {r['concurrency']} | {r['answered']} | {r['throughput_rps']:.1f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_batch']:.1f} | {bad} |")
    for r in reference:
        print(f"in-process predict ({r['backend']}), {r['texts_per_call']} text(s) per call: "
              f"{r['ms_per_text']:.2f} ms per text ({r['texts_per_s']:.0f} texts/s)")
    if generate_levels:
        print(f"\n/generate, {args.gen_tokens} tokens per request:\n")
        print("| concurrency | requests answered | requests/s | tokens/s (all streams) "
              "| first token p50 / p99 (ms) | whole stream p50 / p99 (ms) "
              "| server CPU ms per token | non-200 or stream error |")
        print("|---|---|---|---|---|---|---|---|")
    for r in generate_levels:
        bad = sum(v for k, v in r["statuses"].items() if k != 200)  # incl. stream errors
        print(f"| {r['concurrency']} | {r['answered']} | {r['throughput_rps']:.2f} | "
              f"{r['tokens_per_s']:.0f} | {r['first_token_p50_ms']:.0f} / "
              f"{r['first_token_p99_ms']:.0f} | {r['p50_ms']:.0f} / {r['p99_ms']:.0f} | "
              f"{r['server_cpu_ms_per_token']:.2f} | {bad} |")
    print(f"load average (1 min) before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
