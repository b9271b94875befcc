"""The tagger behind POST /v1/models/{name}/tag, over a tiny tagger trained in the test."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serve_models import tiny_tagger  # noqa: E402

from recur.serve.app import create_app, load_models  # noqa: E402
from recur.serve.limits import Limits  # noqa: E402
from recur.tasks.tagger import NERModel, split_text  # noqa: E402

TEXTS = ["John lives in Paris. Mary visited London today.", "Peter went to Rome",
         "", "the city of Vienna", "Anna likes Madrid and Paul likes Berlin .", "!!"]


@pytest.fixture(scope="module")
def run_dir():
    return tiny_tagger()


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(load_models([f"ner={run_dir}"], Limits()), Limits())) as c:
        yield c


def test_models_lists_the_tag_route(client):
    (model,) = client.get("/models").json()["models"]
    assert model["task"] == "tagger" and model["routes"] == ["tag"]
    assert model["config"]["types"] == ["LOC", "PER"] and model["config"]["scheme"] == "iob2"
    assert "TagRequest" in client.get("/openapi.json").json()["components"]["schemas"]


def test_tag_equals_the_tagger_called_directly(client, run_dir):
    response = client.post("/v1/models/ner/tag", json={"texts": TEXTS})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    direct = NERModel.load(run_dir).tag_texts(TEXTS)
    assert len(results) == len(TEXTS)
    for text, got, sentences in zip(TEXTS, results, direct, strict=True):
        assert got["tokens"] == [t.text for s in split_text(text) for t in s]
        assert got["tags"] == [tag for s in sentences for tag in s.tags]
        assert len(got["tags"]) == len(got["tokens"])
        entities = [e for s in sentences for e in s.entities]
        assert [(e["type"], e["start_char"], e["end_char"], e["text"]) for e in got["entities"]] \
            == [tuple(e) for e in entities]
        for e in got["entities"]:  # token positions point at the entity's tokens
            assert " ".join(got["tokens"][e["start"]:e["end"]]) == e["text"]
            assert text[e["start_char"]:e["end_char"]] == e["text"]
    first = {(e["type"], e["text"]) for e in results[0]["entities"]}
    assert first == {("PER", "John"), ("LOC", "Paris"), ("PER", "Mary"), ("LOC", "London")}
    assert results[2] == {"tokens": [], "tags": [], "entities": []}
    assert results[0]["tags"][:4] == ["B-PER", "O", "O", "B-LOC"]


@pytest.mark.parametrize("body, field", [
    ({}, "texts"), ({"texts": []}, "texts"), ({"texts": "John"}, "texts"),
    ({"texts": [3]}, "texts.0"), ({"texts": ["x" * 10_001]}, "texts[0]"),
    ({"texts": ["x"], "beam": 2}, "beam"), ({"texts": ["\ud800"]}, "texts.0"),
])
def test_bad_bodies_are_422_naming_the_field(client, body, field):
    response = client.post("/v1/models/ner/tag", content=json.dumps(body),  # \ud800 escaped
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_concurrent_requests_are_batched_and_equal_unbatched(run_dir):
    limits = Limits(batch_wait_ms=50)
    models = load_models([f"ner={run_dir}"], limits)
    app = create_app(models, limits)

    async def many():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await asyncio.gather(*(c.post("/v1/models/ner/tag", json={"texts": [t]})
                                          for t in TEXTS * 3))

    responses = asyncio.run(many())
    worker = models["ner"].worker
    assert worker.batches_run < worker.requests_run == len(TEXTS) * 3
    alone = NERModel.load(run_dir)
    for text, response in zip(TEXTS * 3, responses, strict=True):
        (got,) = response.json()["results"]
        (sentences,) = alone.tag_texts([text])
        assert got["tags"] == [tag for s in sentences for tag in s.tags]
