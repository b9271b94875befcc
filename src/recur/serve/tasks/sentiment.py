"""The sentiment classifier behind ``POST /v1/models/{name}/predict``.

Request ``{"texts": ["...", ...]}`` (1 to ``max_batch_size`` texts of at most
``max_text_chars`` characters); response ``{"predictions": [{"label", "probability",
"probabilities": {label: p}}, ...]}`` in input order. Concurrent requests are
micro-batched into one ``SentimentModel.predict`` call, which pads with lengths, so a text
gets the same answer alone or in company (tests/test_serve.py).

``POST /v1/models/{name}/explain`` with ``{"text": "...", "steps": 32}`` returns the
prediction and each token's integrated-gradients attribution for it
(``SentimentModel.explain``; positive = evidence for the predicted label): the web page
colours the words with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from recur.serve.handlers import (
    Route,
    TaskHandler,
    check_text,
    check_texts,
    limits_of,
    register_handler,
)
from recur.serve.limits import Limits
from recur.tasks.sentiment import SentimentModel


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(description="texts to classify (1 to max_batch_size)",
                             examples=[["a wonderful, moving film", "dull and far too long"]])

    @field_validator("texts")
    @classmethod
    def _within_limits(cls, texts: list[str], info: ValidationInfo) -> list[str]:
        return check_texts(texts, limits_of(info))


class LabelProbability(BaseModel):
    label: str
    probability: float = Field(description="probability of the predicted label")
    probabilities: dict[str, float] = Field(description="probability of every label")


class PredictResponse(BaseModel):
    predictions: list[LabelProbability]


def predict(model: SentimentModel, requests: list[PredictRequest],
            limits: Limits) -> list[PredictResponse]:
    """One ``predict`` call for all texts of all requests, split back per request."""
    texts = [text for request in requests for text in request.texts]
    predictions = model.predict(texts)
    responses, start = [], 0
    for request in requests:
        part = predictions[start:start + len(request.texts)]
        start += len(request.texts)
        responses.append(PredictResponse(predictions=[
            LabelProbability(label=p.label, probability=p.probability,
                             probabilities=dict(zip(model.label_names, p.probabilities, strict=True)))
            for p in part]))
    return responses


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="one text to explain", examples=["awful but i love it"])
    steps: int = Field(32, ge=2, le=256, description="integrated-gradients steps")

    @field_validator("text")
    @classmethod
    def _within_limits(cls, text: str, info: ValidationInfo) -> str:
        return check_text("text", text, limits_of(info))


class TokenScore(BaseModel):
    token: str
    score: float = Field(description="evidence for the predicted label (negative: against)")


class ExplainResponse(BaseModel):
    label: str
    probability: float
    method: str = Field(description="integrated_gradients")
    tokens: list[TokenScore] = Field(description="the model's input tokens, after truncation")


def explain(model: SentimentModel, requests: list[ExplainRequest],
            limits: Limits) -> list[ExplainResponse]:
    responses = []
    for request in requests:
        e = model.explain(request.text, steps=request.steps)
        responses.append(ExplainResponse(
            label=e.prediction.label, probability=e.prediction.probability,
            method=e.integrated_gradients.method,
            tokens=[TokenScore(token=t, score=float(v)) for t, v in
                    zip(e.tokens, e.integrated_gradients.scores.tolist(), strict=True)]))
    return responses


def describe(model: SentimentModel) -> dict[str, Any]:
    c = model.model.config
    return {"labels": model.label_names, "cell": c.cell, "hidden_size": c.hidden_size,
            "num_layers": c.num_layers, "bidirectional": c.bidirectional, "pooling": c.pooling,
            "vocab_size": c.vocab_size, "tokenizer": model.data.tokenizer,
            "max_length": model.data.max_length,
            "parameters": sum(p.numel() for p in model.model.parameters())}


def load(folder: Path) -> SentimentModel:
    return SentimentModel.load(folder)


HANDLER = register_handler(TaskHandler(
    task="sentiment", load=load, describe=describe,
    routes={"predict": Route(PredictRequest, PredictResponse, run=predict),
            "explain": Route(ExplainRequest, ExplainResponse, run=explain, batch=False)},
))
