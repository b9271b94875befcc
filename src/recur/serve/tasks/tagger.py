"""The named-entity tagger behind ``POST /v1/models/{name}/tag``.

Request ``{"texts": ["...", ...]}`` (1 to ``max_batch_size`` plain texts of at most
``max_text_chars`` characters); response ``{"results": [{"tokens", "tags", "entities"}]}``,
one per text in input order. Each text is split into sentences and tokens by the tagger's
own ``split_text`` and tagged by ``NERModel.tag_texts`` (what ``recur tag --format text``
uses); ``tokens``/``tags`` run over all sentences of the text, ``entities`` give each
span's type, token positions in ``tokens`` (end exclusive), character offsets in the text
(end exclusive) and its text. Tags are in the model's scheme (IOB2 or BIOES).

Concurrent requests are micro-batched into one ``tag_texts`` call: the tagger batches
sentences with their lengths and puts each answer back at its input position, so a text
gets the same tags alone or in company (tests/test_serve_tagger.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from recur.serve.handlers import Route, TaskHandler, check_texts, limits_of, register_handler
from recur.serve.limits import Limits
from recur.tasks.tagger import NERModel


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(description="plain texts to tag (1 to max_batch_size)",
                             examples=[["Peter Blackburn visited Brussels on Monday."]])

    @field_validator("texts")
    @classmethod
    def _within_limits(cls, texts: list[str], info: ValidationInfo) -> list[str]:
        return check_texts(texts, limits_of(info))


class EntitySpan(BaseModel):
    type: str
    start: int = Field(description="first token's position in tokens")
    end: int = Field(description="position after the last token (exclusive)")
    start_char: int = Field(description="character offset of the entity in the text")
    end_char: int = Field(description="character offset after the entity (exclusive)")
    text: str


class TaggedText(BaseModel):
    tokens: list[str] = Field(description="the text's tokens, all sentences in order")
    tags: list[str] = Field(description="one tag per token (the model's scheme)")
    entities: list[EntitySpan]


class TagResponse(BaseModel):
    results: list[TaggedText]


def tagged_text(sentences) -> TaggedText:
    """One text's sentences (``NERModel.tag_texts``) as a response item."""
    tokens: list[str] = []
    tags: list[str] = []
    entities = []
    for sentence in sentences:
        offset = len(tokens)
        for span, entity in zip(sentence.spans, sentence.entities, strict=True):
            entities.append(EntitySpan(type=span.type, start=offset + span.start,
                                       end=offset + span.end, start_char=entity.start,
                                       end_char=entity.end, text=entity.text))
        tokens += [t.text for t in sentence.tokens]
        tags += sentence.tags
    return TaggedText(tokens=tokens, tags=tags, entities=entities)


def tag(model: NERModel, requests: list[TagRequest], limits: Limits) -> list[TagResponse]:
    """One ``tag_texts`` call for all texts of all requests, split back per request."""
    texts = [text for request in requests for text in request.texts]
    tagged = model.tag_texts(texts, batch_size=limits.max_batch_size)
    responses, start = [], 0
    for request in requests:
        part = tagged[start:start + len(request.texts)]
        start += len(request.texts)
        responses.append(TagResponse(results=[tagged_text(sentences) for sentences in part]))
    return responses


def describe(model: NERModel) -> dict[str, Any]:
    c = model.model.config
    return {"tags": list(model.vocab.tags), "scheme": model.scheme,
            "types": sorted({t.split("-", 1)[1] for t in model.vocab.tags if "-" in t}),
            "head": c.head, "char_encoder": c.char_encoder, "hidden_size": c.hidden_size,
            "num_layers": c.num_layers, "words": len(model.vocab.words),
            "parameters": sum(p.numel() for p in model.model.parameters())}


def load(folder: Path) -> NERModel:
    return NERModel.load(folder)


HANDLER = register_handler(TaskHandler(
    task="tagger", load=load, describe=describe,
    routes={"tag": Route(TagRequest, TagResponse, run=tag)},
))
