"""The language model behind ``/generate`` (streamed) and ``/complete``.

``POST /v1/models/{name}/generate`` with ``{"prompt": "...", "max_new_tokens": 60,
"temperature": 1.0, "top_k": null, "top_p": null, "seed": null, "stop": []}`` streams
server-sent events ``{"token": piece}`` as ``TrainedLanguageModel.generate`` produces them
(the same generator ``recur generate`` prints), then a ``done`` event.
``POST /v1/models/{name}/complete`` with ``{"text": "the clouds are in the", "k": 5,
"words": 1}`` returns ``{"completions": [str], "probabilities": [float]}`` — each
completion continues the text, as ``recur complete`` prints them.

Both take an optional ``"cache": {"size": 500, "theta": 0.3, "lambda": 0.1}``: the
continuous cache of the prompt (and of the text generated so far) mixed into every
next-token distribution, as ``--cache-size/--cache-theta/--cache-lambda`` on the CLI
(``recur.models.neural_cache``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from recur.models.neural_cache import NeuralCache
from recur.serve.handlers import Route, TaskHandler, check_text, limits_of, register_handler
from recur.serve.limits import Limits
from recur.tasks.language_model import TrainedLanguageModel

MAX_COMPLETIONS = 20
MAX_COMPLETION_WORDS = 5
MAX_CACHE_SIZE = 10_000
_CACHE = NeuralCache()


class CacheSettings(BaseModel):
    """The continuous cache (Grave et al. 2017): the last ``size`` positions, similarity
    scale ``theta``, weight ``lambda``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    size: int = Field(ge=1, le=MAX_CACHE_SIZE, description="positions the cache keeps")
    theta: float = Field(_CACHE.theta, ge=0.0, allow_inf_nan=False,
                         description="how sharply similar contexts are preferred")
    lam: float = Field(_CACHE.lam, ge=0.0, lt=1.0, alias="lambda",
                       description="the cache's weight in the mixture")

    def settings(self) -> NeuralCache:
        return NeuralCache(self.size, self.theta, self.lam)


def cache_of(settings: CacheSettings | None) -> NeuralCache | None:
    return None if settings is None else settings.settings()


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field("", description="text to continue (empty: start a new line)")
    max_new_tokens: int = Field(100, description="tokens to generate, 1 to max_new_tokens")
    temperature: float = Field(1.0, ge=0.0, description="0 is greedy")
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, description="makes sampling reproducible")
    stop: list[str] = Field(default_factory=list, max_length=8,
                            description="stop before any of these strings")
    cache: CacheSettings | None = Field(None, description="mix in a continuous cache")

    @field_validator("prompt")
    @classmethod
    def _prompt_within_limits(cls, prompt: str, info: ValidationInfo) -> str:
        return check_text("prompt", prompt, limits_of(info))

    @field_validator("max_new_tokens")
    @classmethod
    def _length_within_limits(cls, n: int, info: ValidationInfo) -> int:
        limits = limits_of(info)
        if not 1 <= n <= limits.max_new_tokens:
            raise ValueError(f"must be 1 to {limits.max_new_tokens}, got {n}")
        return n

    @field_validator("stop")
    @classmethod
    def _stops_not_empty(cls, stop: list[str]) -> list[str]:
        if any(not s for s in stop) or any(len(s) > 100 for s in stop):
            raise ValueError("each stop string must have 1 to 100 characters")
        return stop


class GenerateEvent(BaseModel):
    token: str


def generate(model: TrainedLanguageModel, request: GenerateRequest,
             limits: Limits) -> Iterator[dict[str, Any]]:
    pieces = model.generate(request.prompt, length=request.max_new_tokens,
                            temperature=request.temperature, top_k=request.top_k,
                            top_p=request.top_p, seed=request.seed, stop=tuple(request.stop),
                            cache=cache_of(request.cache))
    for piece in pieces:
        yield {"token": piece}


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the text to complete", examples=["the clouds are in the"])
    k: int = Field(5, ge=1, le=MAX_COMPLETIONS, description="how many completions")
    words: int = Field(1, ge=1, le=MAX_COMPLETION_WORDS, description="words per completion")
    cache: CacheSettings | None = Field(None, description="mix in a continuous cache")

    @field_validator("text")
    @classmethod
    def _within_limits(cls, text: str, info: ValidationInfo) -> str:
        return check_text("text", text, limits_of(info))


class CompleteResponse(BaseModel):
    completions: list[str] = Field(description="continuations of the text, likeliest first")
    probabilities: list[float]


def complete(model: TrainedLanguageModel, requests: list[CompleteRequest],
             limits: Limits) -> list[CompleteResponse]:
    responses = []
    for request in requests:
        found = model.complete(request.text, k=request.k, words=request.words,
                               cache=cache_of(request.cache))
        responses.append(CompleteResponse(completions=[c.text for c in found],
                                          probabilities=[c.probability for c in found]))
    return responses


def describe(model: TrainedLanguageModel) -> dict[str, Any]:
    c = model.model.config
    return {"level": model.data.level, "cell": c.cell, "hidden_size": c.hidden_size,
            "num_layers": c.num_layers, "vocab_size": c.vocab_size,
            "conditions": model.label_names,
            "parameters": sum(p.numel() for p in model.model.parameters())}


def load(folder: Path) -> TrainedLanguageModel:
    return TrainedLanguageModel.load(folder)


HANDLER = register_handler(TaskHandler(
    task="language_model", load=load, describe=describe,
    routes={"generate": Route(GenerateRequest, GenerateEvent, stream=generate),
            "complete": Route(CompleteRequest, CompleteResponse, run=complete, batch=False)},
))
