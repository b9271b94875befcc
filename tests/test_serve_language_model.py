"""/generate (streamed) and /complete over a tiny character language model."""

import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from serve_models import tiny_language_model  # noqa: E402

from recur.models.neural_cache import NeuralCache  # noqa: E402
from recur.serve.app import create_app, load_models  # noqa: E402
from recur.serve.limits import Limits  # noqa: E402
from recur.tasks.language_model import TrainedLanguageModel  # noqa: E402


@pytest.fixture(scope="module")
def run_dir():
    return tiny_language_model()


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(load_models([f"lm={run_dir}"], Limits()), Limits())) as c:
        yield c


def events(response):
    """(event, data) pairs of a server-sent event stream."""
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = block.split("\n")
        kind = next((line[7:] for line in lines if line.startswith("event: ")), "message")
        data = next((line[6:] for line in lines if line.startswith("data: ")), "null")
        out.append((kind, json.loads(data)))
    return out


def test_models_lists_the_routes(client):
    (model,) = client.get("/models").json()["models"]
    assert model["task"] == "language_model"
    assert set(model["routes"]) == {"generate", "complete"}
    assert model["config"]["level"] == "char"


def test_generate_streams_what_the_model_generates_with_a_seed(client, run_dir):
    body = {"prompt": "the ", "max_new_tokens": 30, "temperature": 0.8, "seed": 3}
    response = client.post("/v1/models/lm/generate", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    tokens = "".join(d["token"] for kind, d in got if kind == "message" and d and "token" in d)
    expected = "".join(TrainedLanguageModel.load(run_dir).generate(
        "the ", length=30, temperature=0.8, seed=3))
    assert tokens == expected and len(tokens) > 0
    assert got[-1][0] == "done"


def test_complete_equals_the_model_called_directly(client, run_dir):
    response = client.post("/v1/models/lm/complete", json={"text": "the mov", "k": 3})
    assert response.status_code == 200
    got = response.json()
    expected = TrainedLanguageModel.load(run_dir).complete("the mov", k=3)
    assert got["completions"] == [c.text for c in expected]
    assert got["probabilities"] == pytest.approx([c.probability for c in expected], abs=1e-6)


def test_a_cache_in_the_body_is_the_model_s_cache(client, run_dir):
    model = TrainedLanguageModel.load(run_dir)
    cache = {"size": 40, "theta": 0.5, "lambda": 0.3}
    response = client.post("/v1/models/lm/complete",
                           json={"text": "the movie the mov", "k": 3, "cache": cache})
    assert response.status_code == 200
    expected = model.complete("the movie the mov", k=3, cache=NeuralCache(40, 0.5, 0.3))
    assert response.json()["completions"] == [c.text for c in expected]
    assert response.json()["probabilities"] == pytest.approx(
        [c.probability for c in expected], abs=1e-6)
    body = {"prompt": "the ", "max_new_tokens": 20, "seed": 2, "cache": {"size": 40}}
    tokens = "".join(d["token"] for kind, d in events(client.post("/v1/models/lm/generate",
                                                                  json=body))
                     if kind == "message" and d and "token" in d)
    assert tokens == "".join(model.generate("the ", length=20, seed=2,
                                            cache=NeuralCache(40)))


@pytest.mark.parametrize("route, body, field", [
    ("generate", {"prompt": "a", "cache": {"size": 0}}, "size"),
    ("generate", {"prompt": "a", "cache": {"theta": 0.3}}, "size"),
    ("complete", {"text": "a", "cache": {"size": 10, "lambda": 1.0}}, "lambda"),
    ("complete", {"text": "a", "cache": {"size": 10, "theta": -1}}, "theta"),
    ("complete", {"text": "a", "cache": {"size": 10, "lamb": 0.1}}, "lamb"),
    ("generate", {"prompt": "a", "max_new_tokens": 0}, "max_new_tokens"),
    ("generate", {"prompt": "a", "max_new_tokens": 10**6}, "max_new_tokens"),
    ("generate", {"prompt": "a", "temperature": -1}, "temperature"),
    ("generate", {"prompt": "a", "top_p": 1.5}, "top_p"),
    ("generate", {"prompt": "a", "top_k": 0}, "top_k"),
    ("generate", {"prompt": "a", "stop": [""]}, "stop"),
    ("complete", {"text": "a", "k": 0}, "k"),
    ("complete", {"text": "a", "words": 99}, "words"),
    ("complete", {"k": 2}, "text"),
])
def test_bad_bodies_are_422_naming_the_field(client, route, body, field):
    response = client.post(f"/v1/models/lm/{route}", json=body)
    assert response.status_code == 422
    assert field in response.text
