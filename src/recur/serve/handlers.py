"""How a task plugs into the server: a ``TaskHandler`` per checkpoint task name.

A handler says how to load a checkpoint folder of its task, how to describe the loaded
model for GET /models, and which routes it answers, each with a request and a response
schema (pydantic models) and a ``run`` function::

    from recur.serve.handlers import Route, TaskHandler, register_handler

    register_handler(TaskHandler(
        task="tagger",                             # config.json's "task"
        load=TaggerModel.load,                     # folder -> loaded model
        describe=lambda m: {"labels": m.labels},   # config summary for GET /models
        routes={"tag": Route(TagRequest, TagResponse, run=tag_batch)},
    ))

``run(model, requests, limits) -> responses`` gets a list of validated requests (one, or
several micro-batched together when ``Route.batch`` is True) and returns one response per
request, in order; it runs in the model's own worker thread, never two at once for one
model. A streaming route (``/generate``) gives ``stream(model, request, limits)``: an
iterator of JSON-able dicts, each sent as one server-sent event.

Request models see the server's ``Limits`` as validation context
(``info.context["limits"]``), so a field validator can refuse a text longer than
``max_text_chars`` with a message naming the field.

The modules that register handlers are listed in ``HANDLER_MODULES`` (task name → module)
and imported when a checkpoint of that task is served.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationInfo

from recur.serve.limits import Limits

ROUTES: dict[str, str] = {
    "predict": "a sentiment (classifier) model",
    "explain": "a sentiment (classifier) model",
    "generate": "a language model",
    "complete": "a language model",
    "tag": "a tagger model",
    "translate": "a translation model",
    "forecast": "a forecasting model",
}
"""Every model route the server knows, with the kind of model it needs (for errors)."""

STREAMING_ROUTES = ("generate",)

HANDLER_MODULES: dict[str, str] = {"sentiment": "recur.serve.tasks.sentiment",
                                   "tagger": "recur.serve.tasks.tagger",
                                   "translate": "recur.serve.tasks.translate",
                                   "language_model": "recur.serve.tasks.language_model",
                                   "forecast": "recur.serve.tasks.forecast"}
"""Checkpoint task name → the module that registers its handler on import."""


class RequestError(ValueError):
    """Raised by a route's ``run`` when a valid request does not fit the served model (a
    series shorter than the model reads, say): the server answers 422 with the message,
    which names the field. Routes that raise it should not be micro-batched (``batch=False``)."""

_HANDLERS: dict[str, TaskHandler] = {}


@dataclass(frozen=True)
class Route:
    """One model route: ``POST /v1/models/{name}/{route}``.

    request, response: pydantic models of the JSON bodies (requests forbid extra fields).
    run: ``(model, [request, ...], limits) -> [response, ...]``, same length and order.
    batch: requests to one model may be micro-batched into one ``run`` call.
    stream: for streaming routes, ``(model, request, limits) -> iterator of dicts``.
    """

    request: type[BaseModel]
    response: type[BaseModel]
    run: Callable[[Any, list[Any], Limits], list[Any]] | None = None
    batch: bool = True
    stream: Callable[[Any, Any, Limits], Iterator[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.stream is None):
            raise ValueError("a Route needs exactly one of run= or stream=")


@dataclass(frozen=True)
class TaskHandler:
    """What the server needs to serve a task's checkpoints."""

    task: str
    load: Callable[[Any], Any]
    describe: Callable[[Any], dict[str, Any]]
    routes: dict[str, Route] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.routes) - set(ROUTES)
        if unknown:
            raise ValueError(f"routes must be among {', '.join(ROUTES)}, got {sorted(unknown)}")
        for name, route in self.routes.items():
            if (name in STREAMING_ROUTES) != (route.stream is not None):
                kind = "a stream=" if name in STREAMING_ROUTES else "a run="
                raise ValueError(f"route {name!r} needs {kind} function")


def register_handler(handler: TaskHandler) -> TaskHandler:
    """Make ``handler`` serve checkpoints whose config.json says ``task = handler.task``."""
    _HANDLERS[handler.task] = handler
    return handler


def unregister_handler(task: str) -> None:
    _HANDLERS.pop(task, None)


def handler_for(task: str) -> TaskHandler:
    """The handler of ``task``, importing its module from ``HANDLER_MODULES`` if needed."""
    if task not in _HANDLERS and task in HANDLER_MODULES:
        importlib.import_module(HANDLER_MODULES[task])
    if task not in _HANDLERS:
        known = sorted(set(_HANDLERS) | set(HANDLER_MODULES))
        raise ValueError(f"the server has no handler for {task!r} models; it serves "
                         f"{', '.join(known)}")
    return _HANDLERS[task]


def limits_of(info: ValidationInfo) -> Limits:
    """The server's Limits inside a pydantic validator (defaults outside a server)."""
    context = info.context or {}
    return context.get("limits") or Limits()


def check_texts(texts: list[str], limits: Limits) -> list[str]:
    """A ``texts`` field: 1 to ``max_batch_size`` texts, each passing ``check_text``."""
    if not 1 <= len(texts) <= limits.max_batch_size:
        raise ValueError(f"must hold 1 to {limits.max_batch_size} texts, got {len(texts)}")
    for i, text in enumerate(texts):
        check_text(f"texts[{i}]", text, limits)
    return texts


def check_text(field_name: str, text: str, limits: Limits) -> str:
    """A text input within ``max_text_chars`` and encodable as UTF-8 (JSON's ``\\ud800``
    escapes give lone surrogates, which tokenizers and JSON writers refuse)."""
    if len(text) > limits.max_text_chars:
        raise ValueError(f"{field_name} must have at most {limits.max_text_chars} characters, "
                         f"got {len(text)}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{field_name} must be valid Unicode, got a lone surrogate at "
                         f"character {err.start}") from None
    return text
