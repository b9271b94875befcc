"""The translator behind POST /v1/models/{name}/translate, over a tiny model trained here."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serve_models import tiny_translator  # noqa: E402

from recur.serve.app import create_app, load_models  # noqa: E402
from recur.serve.limits import MAX_BEAM, Limits  # noqa: E402
from recur.tasks.translate import Translator  # noqa: E402

TEXTS = ["a b c", "d e f g", "", "h a", "b b c d e", "zz unknown a"]


@pytest.fixture(scope="module")
def run_dir():
    return tiny_translator()


@pytest.fixture(scope="module")
def client(run_dir):
    limits = Limits(max_beam=4)
    with TestClient(create_app(load_models([f"rev={run_dir}"], limits), limits)) as c:
        yield c


def test_models_lists_the_translate_route(client):
    body = client.get("/models").json()
    (model,) = body["models"]
    assert model["task"] == "translate" and model["routes"] == ["translate"]
    assert model["config"]["tokenizer"] == "word" and body["limits"]["max_beam"] == 4
    assert Limits().max_beam == MAX_BEAM


@pytest.mark.parametrize("beam", [1, 3])
def test_translate_equals_the_translator_called_directly(client, run_dir, beam):
    response = client.post("/v1/models/rev/translate", json={"texts": TEXTS, "beam": beam})
    assert response.status_code == 200, response.text
    got = response.json()["translations"]
    direct = Translator.load(run_dir).translate(TEXTS, beam=beam)
    assert got == [outputs[0].text for outputs in direct]
    assert got[2] == ""


@pytest.mark.parametrize("body, field", [
    ({}, "texts"), ({"texts": []}, "texts"), ({"texts": ["a"], "beam": 0}, "beam"),
    ({"texts": ["a"], "beam": 5}, "beam"), ({"texts": ["a"], "beam": "wide"}, "beam"),
    ({"texts": ["a"], "beam": -1}, "beam"), ({"texts": ["a" * 10_001]}, "texts[0]"),
    ({"texts": ["a"], "n_best": 2}, "n_best"),
])
def test_bad_bodies_are_422_naming_the_field(client, body, field):
    response = client.post("/v1/models/rev/translate", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_concurrent_requests_are_batched_and_equal_unbatched(run_dir):
    limits = Limits(batch_wait_ms=50)
    models = load_models([f"rev={run_dir}"], limits)
    app = create_app(models, limits)
    bodies = [{"texts": [t], "beam": beam} for beam in (1, 2) for t in TEXTS] * 2

    async def many():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await asyncio.gather(*(c.post("/v1/models/rev/translate", json=b)
                                          for b in bodies))

    responses = asyncio.run(many())
    worker = models["rev"].worker
    assert worker.batches_run < worker.requests_run == len(bodies)
    alone = Translator.load(run_dir)
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        expected = alone.translate(body["texts"], beam=body["beam"])[0][0].text
        assert response.json()["translations"] == [expected]
