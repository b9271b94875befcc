"""The HTTP API over a tiny trained sentiment model: routes, limits, errors, batching."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import BaseModel, ConfigDict  # noqa: E402
from serve_models import serve_in_thread, tiny_sentiment  # noqa: E402

from recur.serve.app import create_app, load_models, parse_model_spec  # noqa: E402
from recur.serve.handlers import (  # noqa: E402
    ROUTES,
    Route,
    TaskHandler,
    register_handler,
    unregister_handler,
)
from recur.serve.limits import Limits  # noqa: E402
from recur.tasks.sentiment import SentimentModel  # noqa: E402

TEXTS = ["the film was wonderful", "the plot was awful and dull", "a superb moving story",
         "it was boring", "", "the actors were brilliant and the story was great"]


@pytest.fixture(scope="module")
def run_dir() -> Path:
    return tiny_sentiment()


@pytest.fixture(scope="module")
def client(run_dir):
    app = create_app(load_models([f"imdb={run_dir}"], Limits()), Limits())
    with TestClient(app) as c:
        yield c


def predict(client, body, name="imdb"):
    return client.post(f"/v1/models/{name}/predict", json=body)


# -- the happy path --------------------------------------------------------------------------


def test_health_models_and_openapi(client):
    assert client.get("/health").json()["status"] == "ok"
    (model,) = client.get("/models").json()["models"]
    assert model["name"] == "imdb" and model["task"] == "sentiment"
    assert model["routes"] == ["explain", "predict"]
    assert model["config"]["cell"] == "lstm" and model["config"]["labels"] == ["negative", "positive"]
    schema = client.get("/openapi.json").json()
    assert {f"/v1/models/{{name}}/{route}" for route in ROUTES} <= set(schema["paths"])
    assert "PredictRequest" in schema["components"]["schemas"]
    body = schema["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("PredictRequest")


def test_predict_equals_the_model_called_directly(client, run_dir):
    response = predict(client, {"texts": TEXTS})
    assert response.status_code == 200
    got = response.json()["predictions"]
    expected = SentimentModel.load(run_dir).predict(TEXTS)
    assert [p["label"] for p in got] == [p.label for p in expected]
    assert got[0]["label"] == "positive" and got[1]["label"] == "negative"
    for g, e in zip(got, expected, strict=True):
        assert g["probability"] == pytest.approx(e.probability, abs=1e-6)
        assert sum(g["probabilities"].values()) == pytest.approx(1, abs=1e-6)


def test_index_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>recur" in page.text


# -- validation: 4xx naming the field --------------------------------------------------------


@pytest.mark.parametrize("body, status, field", [
    ({}, 422, "texts"),
    ({"texts": "just a string"}, 422, "texts"),
    ({"texts": [1, 2]}, 422, "texts.0"),
    ({"texts": []}, 422, "texts"),
    ({"texts": ["ok"], "temperature": 2}, 422, "temperature"),
    ({"texts": ["x" * 10_001]}, 422, "texts[0]"),
    ({"texts": ["ok"] * 65}, 422, "texts"),
    ({"texts": ["fine", "\ud800"]}, 422, "texts.1: must be valid Unicode"),
    ({"texts": ["ok"], "\udfff": 1}, 422, "\\udfff: must be valid Unicode"),
    ([1, 2, 3], 422, "body"),
    ("a string", 422, "body"),
])
def test_invalid_fields_are_4xx_naming_the_field(client, body, status, field):
    response = client.post("/v1/models/imdb/predict", content=json.dumps(body))
    assert response.status_code == status, response.text
    assert field in response.json()["detail"]


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe\x00garbage", b"[" * 100_000, b"NaN-ish"])
def test_unreadable_bodies_are_400(client, raw):
    response = client.post("/v1/models/imdb/predict", content=raw)
    assert response.status_code == 400
    assert "must be JSON" in response.json()["detail"]


def test_body_over_the_limit_is_413(run_dir):
    limits = Limits(max_body_bytes=100)
    with TestClient(create_app(load_models([f"imdb={run_dir}"], limits), limits)) as c:
        response = predict(c, {"texts": ["a" * 200]})
        assert response.status_code == 413 and "at most 100 bytes" in response.json()["detail"]

        def chunks():  # no Content-Length: counted while read
            yield b'{"texts": ["'
            yield b"a" * 200
            yield b'"]}'
        response = c.post("/v1/models/imdb/predict", content=chunks())
        assert response.status_code == 413


def test_explain_gives_each_token_its_attribution(client, run_dir):
    response = client.post("/v1/models/imdb/explain", json={"text": "the plot was awful and dull"})
    assert response.status_code == 200
    got = response.json()
    e = SentimentModel.load(run_dir).explain("the plot was awful and dull", steps=32)
    assert got["label"] == e.prediction.label == "negative"
    assert [t["token"] for t in got["tokens"]] == e.tokens
    scores = [t["score"] for t in got["tokens"]]
    assert scores == pytest.approx(e.integrated_gradients.scores.tolist(), abs=1e-6)
    assert got["tokens"][max(range(len(scores)), key=scores.__getitem__)]["token"] in ("awful", "dull")
    bad = client.post("/v1/models/imdb/explain", json={"text": "x", "steps": 1})
    assert bad.status_code == 422 and "steps" in bad.text


# -- routes of other tasks, unknown names, path traversal ------------------------------------


@pytest.mark.parametrize("route, needs", [("tag", "a tagger model"), ("generate", "a language model"),
                                          ("complete", "a language model"),
                                          ("translate", "a translation model"),
                                          ("forecast", "a forecasting model")])
def test_routes_of_other_tasks_say_what_model_they_need(client, route, needs):
    response = client.post(f"/v1/models/imdb/{route}", json={"texts": ["x"]})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"model 'imdb' is a sentiment model; /{route} needs {needs}")


@pytest.mark.parametrize("name", ["nope", "..", "...", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "imdb%2F..",
                                  "%2Fetc%2Fpasswd", "imdb%00", "IMDB", "imdb.", "~root"])
def test_model_names_cannot_escape_the_served_folders(client, name):
    response = client.post(f"/v1/models/{name}/predict", json={"texts": ["x"]})
    assert response.status_code == 404
    assert "passwd" not in response.text and "root:" not in response.text


def test_model_names_from_the_command_line_are_checked(run_dir):
    assert parse_model_spec(f"imdb={run_dir}") == ("imdb", run_dir)
    assert parse_model_spec(str(run_dir))[0] == "run"
    for bad in [f"../x={run_dir}", f"a/b={run_dir}", f"={run_dir}", f".hidden={run_dir}"]:
        with pytest.raises(ValueError, match="model name must match"):
            parse_model_spec(bad)
    with pytest.raises(ValueError, match="two models are named 'a'"):
        load_models([f"a={run_dir}", f"a={run_dir}"], Limits())


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_pending must be a positive int, got 0"):
        Limits(max_pending=0)
    with pytest.raises(ValueError, match="request_timeout_s must be a positive number"):
        Limits(request_timeout_s=-1.0)


# -- micro-batching ---------------------------------------------------------------------------


def test_concurrent_requests_are_batched_and_equal_unbatched(run_dir):
    limits = Limits(batch_wait_ms=50)
    models = load_models([f"imdb={run_dir}"], limits)
    app = create_app(models, limits)
    alone = SentimentModel.load(run_dir)

    async def many():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(*(c.post("/v1/models/imdb/predict", json={"texts": [t]})
                                          for t in TEXTS * 4))

    responses = asyncio.run(many())
    worker = models["imdb"].worker
    assert worker.requests_run == len(TEXTS) * 4
    assert worker.batches_run < worker.requests_run  # some requests shared a forward pass
    for text, response in zip(TEXTS * 4, responses, strict=True):
        (got,) = response.json()["predictions"]
        (expected,) = alone.predict([text])
        assert got["label"] == expected.label
        assert got["probability"] == pytest.approx(expected.probability, abs=1e-6)


def test_micro_batches_respect_max_batch_size(run_dir):
    limits = Limits(batch_wait_ms=50, max_batch_size=5)
    models = load_models([f"imdb={run_dir}"], limits)
    app = create_app(models, limits)
    sizes = []
    original = models["imdb"].handler.routes["predict"].run

    async def many():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await asyncio.gather(*(c.post("/v1/models/imdb/predict", json={"texts": [t, t]})
                                          for t in TEXTS))

    import recur.serve.batching as batching

    real_run = batching.ModelWorker._run

    def spy(self, spec, requests):
        sizes.append(sum(len(r.texts) for r in requests))
        return real_run(self, spec, requests)

    batching.ModelWorker._run = spy
    try:
        responses = asyncio.run(many())
    finally:
        batching.ModelWorker._run = real_run
    assert original is models["imdb"].handler.routes["predict"].run
    assert all(r.status_code == 200 for r in responses)
    assert sum(sizes) == 2 * len(TEXTS) and max(sizes) <= 5


# -- a test task: how another task plugs in, streaming, 503, 504, failures ---------------------


class EchoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str
    max_new_tokens: int = 3
    sleep_s: float = 0.0


class EchoResponse(BaseModel):
    text: str


def _echo(model, requests, limits):
    for r in requests:
        if r.sleep_s:
            time.sleep(r.sleep_s)
        if r.prompt == "fail":
            raise RuntimeError("the echo model failed")
    return [EchoResponse(text=r.prompt[::-1]) for r in requests]


def _stream(model, request, limits):
    for i in range(min(request.max_new_tokens, limits.max_new_tokens)):
        if request.prompt == "fail" and i == 1:
            raise RuntimeError("the echo stream failed")
        time.sleep(request.sleep_s)
        yield {"token": f"{request.prompt}{i} "}


@pytest.fixture
def echo_dir(tmp_path):
    register_handler(TaskHandler(
        task="echo-test", load=lambda folder: {"folder": str(folder)},
        describe=lambda model: {"kind": "test"},
        routes={"complete": Route(EchoRequest, EchoResponse, run=_echo, batch=False),
                "translate": Route(EchoRequest, EchoResponse, run=_echo),
                "generate": Route(EchoRequest, EchoResponse, stream=_stream)}))
    (tmp_path / "config.json").write_text(json.dumps({"task": "echo-test"}))
    yield tmp_path
    unregister_handler("echo-test")


def test_a_registered_task_gets_its_routes_and_streams_events(echo_dir, run_dir):
    with TestClient(create_app(load_models([f"echo={echo_dir}", f"imdb={run_dir}"], Limits()))) as c:
        assert c.post("/v1/models/echo/complete", json={"prompt": "abc"}).json() == {"text": "cba"}
        assert c.post("/v1/models/echo/translate", json={"prompt": "xy"}).json() == {"text": "yx"}
        response = c.post("/v1/models/echo/generate", json={"prompt": "t", "max_new_tokens": 4})
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [block for block in response.text.split("\n\n") if block]
        tokens = [json.loads(e.removeprefix("data: "))["token"] for e in events[:-1]]
        assert tokens == ["t0 ", "t1 ", "t2 ", "t3 "] and events[-1].startswith("event: done")
        detail = c.post("/v1/models/imdb/generate", json={"prompt": "x"}).json()["detail"]
        assert "served models that take /generate: echo" in detail
        detail = c.post("/v1/models/echo/predict", json={"texts": ["x"]}).json()["detail"]
        assert detail.startswith("model 'echo' is a echo-test model; /predict needs")
        assert c.get("/health").json()["pending"] == 0


def test_streams_end_with_an_error_event_on_timeout_or_failure(echo_dir):
    limits = Limits(request_timeout_s=0.3)
    with TestClient(create_app(load_models([f"echo={echo_dir}"], limits), limits)) as c:
        slow = c.post("/v1/models/echo/generate",
                      json={"prompt": "s", "max_new_tokens": 50, "sleep_s": 0.1}).text
        assert slow.startswith("data: ") and "event: error" in slow and "request_timeout_s" in slow
        assert slow.count("data: {\"token\"") < 50
        failed = c.post("/v1/models/echo/generate", json={"prompt": "fail", "max_new_tokens": 3}).text
        assert failed.count("data: {\"token\"") == 1 and "event: error" in failed
        assert "event: done" not in failed
        assert c.get("/health").json()["pending"] == 0


def test_full_server_answers_503_with_retry_after(echo_dir):
    limits = Limits(max_pending=1, retry_after_s=7)
    app = create_app(load_models([f"echo={echo_dir}"], limits), limits)

    async def two():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            slow = asyncio.create_task(c.post("/v1/models/echo/complete",
                                              json={"prompt": "a", "sleep_s": 0.5}))
            await asyncio.sleep(0.15)
            rejected = await c.post("/v1/models/echo/complete", json={"prompt": "b"})
            return await slow, rejected

    slow, rejected = asyncio.run(two())
    assert slow.status_code == 200
    assert rejected.status_code == 503 and rejected.headers["retry-after"] == "7"
    assert "limit of 1 requests" in rejected.json()["detail"]


def test_slow_request_times_out_with_504_and_server_stays_healthy(echo_dir):
    limits = Limits(request_timeout_s=0.2)
    with TestClient(create_app(load_models([f"echo={echo_dir}"], limits), limits)) as c:
        response = c.post("/v1/models/echo/translate", json={"prompt": "a", "sleep_s": 0.6})
        assert response.status_code == 504 and "request_timeout_s" in response.json()["detail"]
        time.sleep(0.5)
        assert c.post("/v1/models/echo/translate", json={"prompt": "ok"}).json() == {"text": "ko"}
        assert c.get("/health").json()["pending"] == 0


def test_a_failing_model_is_a_500_naming_the_model_and_the_server_goes_on(echo_dir):
    with TestClient(create_app(load_models([f"echo={echo_dir}"], Limits())),
                    raise_server_exceptions=False) as c:
        response = c.post("/v1/models/echo/translate", json={"prompt": "fail"})
        assert response.status_code == 500 and "model 'echo' failed" in response.json()["detail"]
        assert c.post("/v1/models/echo/translate", json={"prompt": "ab"}).json() == {"text": "ba"}


def test_unknown_task_has_no_handler(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task": "mystery"}))
    with pytest.raises(ValueError, match="no handler for 'mystery' models; it serves .*sentiment"):
        load_models([str(tmp_path)], Limits())


# -- the real server: recur serve on a loopback port ------------------------------------------


def test_recur_serve_binds_loopback_and_answers_over_a_socket(run_dir, monkeypatch):
    import urllib.request

    import uvicorn

    from recur.cli import main

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    assert main(["serve", f"imdb={run_dir}", "--port", "8123", "--max-pending", "3"]) == 0
    assert started["host"] == "127.0.0.1" and started["port"] == 8123
    assert started["app"].state.limits.max_pending == 3
    with serve_in_thread(started["app"]) as url:
        request = urllib.request.Request(f"{url}/v1/models/imdb/predict",
                                         data=json.dumps({"texts": ["wonderful"]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert json.load(r)["predictions"][0]["label"] == "positive"


def test_recur_serve_refuses_bad_options(run_dir, capsys):
    from recur.cli import main

    assert main(["serve", f"imdb={run_dir}", "--port", "0"]) == 2
    assert "--port must be in 1..65535, got 0" in capsys.readouterr().err
    assert main(["serve", f"imdb={run_dir}", "--max-batch-size", "0"]) == 2
    assert "max_batch_size must be a positive int, got 0" in capsys.readouterr().err
