"""The translation model behind ``POST /v1/models/{name}/translate``.

Request ``{"texts": ["...", ...], "beam": 1}`` (1 to ``max_batch_size`` source sentences of
at most ``max_text_chars`` characters; ``beam`` 1 = greedy, up to ``max_beam``); response
``{"translations": ["...", ...]}`` in input order, from ``Translator.translate`` (what
``recur translate`` uses): an empty source translates to "", a source longer than the
checkpoint's ``max_source_length`` tokens is truncated.

Concurrent requests with the same ``beam`` are micro-batched into one ``translate`` call
(the translator batches sources with their lengths and puts each answer back at its input
position), so a sentence gets the same translation alone or in company
(tests/test_serve_translate.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from recur.serve.handlers import Route, TaskHandler, check_texts, limits_of, register_handler
from recur.serve.limits import Limits
from recur.tasks.translate import Translator


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(description="source sentences (1 to max_batch_size)",
                             examples=[["Ein Mann fährt Fahrrad."]])
    beam: int = Field(1, description="beam size, 1 (greedy) to max_beam")

    @field_validator("texts")
    @classmethod
    def _within_limits(cls, texts: list[str], info: ValidationInfo) -> list[str]:
        return check_texts(texts, limits_of(info))

    @field_validator("beam")
    @classmethod
    def _beam_within_limits(cls, beam: int, info: ValidationInfo) -> int:
        limits = limits_of(info)
        if not 1 <= beam <= limits.max_beam:
            raise ValueError(f"must be 1 to {limits.max_beam}, got {beam}")
        return beam


class TranslateResponse(BaseModel):
    translations: list[str]


def translate(model: Translator, requests: list[TranslateRequest],
              limits: Limits) -> list[TranslateResponse]:
    """One ``translate`` call per beam size for all texts of the requests asking for it."""
    found: dict[int, str] = {}  # (request, text) flattened position -> translation
    positions = []
    start = 0
    for request in requests:
        positions.append(range(start, start + len(request.texts)))
        start += len(request.texts)
    for beam in sorted({request.beam for request in requests}):
        chosen = [(p, text) for request, where in zip(requests, positions, strict=True)
                  if request.beam == beam for p, text in zip(where, request.texts, strict=True)]
        outputs = model.translate([text for _, text in chosen], beam=beam,
                                  batch_size=limits.max_batch_size)
        found.update((p, out[0].text) for (p, _), out in zip(chosen, outputs, strict=True))
    return [TranslateResponse(translations=[found[p] for p in where]) for where in positions]


def describe(model: Translator) -> dict[str, Any]:
    c = model.model.config
    return {"architecture": c.architecture, "attention": c.attention_kind, "cell": c.cell,
            "embed_dim": c.embed_dim, "encoder_hidden": c.encoder_hidden,
            "decoder_hidden": c.decoder_hidden, "bidirectional": c.bidirectional,
            "tokenizer": model.data.tokenizer, "src_vocab_size": c.src_vocab_size,
            "tgt_vocab_size": c.tgt_vocab_size, "max_source_length": model.data.max_source_length,
            "parameters": sum(p.numel() for p in model.model.parameters())}


def load(folder: Path) -> Translator:
    return Translator.load(folder)


HANDLER = register_handler(TaskHandler(
    task="translate", load=load, describe=describe,
    routes={"translate": Route(TranslateRequest, TranslateResponse, run=translate)},
))
