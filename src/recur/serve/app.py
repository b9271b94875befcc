"""The FastAPI app over saved models: routes, limits, errors, the web page.

    GET  /                               the web page (static/index.html)
    GET  /health                         {"status": "ok", "models": [...], "pending": n}
    GET  /models                         name, task, routes and config summary of each model
    POST /v1/models/{name}/{route}       route in predict, generate (SSE), complete, tag,
                                         translate, forecast
    GET  /openapi.json, /docs            the OpenAPI schema

Errors are JSON ``{"detail": "..."}``: 400 unreadable body or a model of the wrong task,
404 unknown model, 413 body too large, 422 invalid field (``detail`` names it, ``errors``
lists every one), 503 + Retry-After when ``max_pending`` requests are already admitted,
504 past ``request_timeout_s``. Model names are looked up in the table of served models,
never joined to a path, so no name reaches outside the served folders.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError

from recur.serve.batching import ModelWorker
from recur.serve.handlers import (
    ROUTES,
    STREAMING_ROUTES,
    RequestError,
    TaskHandler,
    handler_for,
)
from recur.serve.limits import Limits

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("recur.serve")


@dataclass
class ServedModel:
    name: str
    task: str
    folder: Path
    model: Any
    handler: TaskHandler
    worker: ModelWorker

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "routes": sorted(self.handler.routes),
                "config": self.handler.describe(self.model)}


class HTTPError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.errors = status, detail, headers, errors

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"detail": self.detail}
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def parse_model_spec(spec: str) -> tuple[str, Path]:
    """``NAME=DIR`` or ``DIR`` (named after the folder) -> (name, folder)."""
    name, sep, folder = spec.partition("=")
    if not sep:
        folder, name = spec, Path(spec.rstrip("/")).resolve().name
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"model name must match {NAME_PATTERN.pattern} (give NAME=DIR to "
                         f"choose one), got {name!r} for {folder}")
    return name, Path(folder)


def load_models(specs: list[str], limits: Limits) -> dict[str, ServedModel]:
    """Load every ``NAME=DIR`` / ``DIR`` with its task's handler."""
    from recur.training.checkpoint import read_config, resolve

    if not specs:
        raise ValueError("give at least one model folder to serve, got none")
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, folder = parse_model_spec(spec)
        if name in models:
            raise ValueError(f"two models are named {name!r} ({models[name].folder} and "
                             f"{folder}); name them with NAME=DIR")
        task = read_config(folder)["task"]
        handler = handler_for(task)
        model = handler.load(resolve(folder))
        models[name] = ServedModel(name, task, Path(folder), model, handler,
                                   ModelWorker(name, model, handler.routes, limits))
    return models


def _error_list(error: ValidationError) -> list[dict[str, str]]:
    out = []
    for e in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in e["loc"]) or "body"
        message = e["msg"].removeprefix("Value error, ")
        out.append({"field": field, "message": message})
    return out


async def read_json_body(request: Request, limits: Limits) -> dict[str, Any]:
    """The request's JSON object, read up to ``max_body_bytes``."""
    length = request.headers.get("content-length", "")
    too_big = f"request body must be at most {limits.max_body_bytes} bytes"
    if length.isdigit() and int(length) > limits.max_body_bytes:
        raise HTTPError(413, f"{too_big}, got {int(length)}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise HTTPError(413, f"{too_big}, got more")
    try:
        data = json.loads(bytes(body))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, ...
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise HTTPError(400, f"request body must be JSON (UTF-8), got unreadable bytes: {reason}") \
            from None
    if not isinstance(data, dict):
        raise HTTPError(422, f"request body must be a JSON object, got {type(data).__name__}",
                        errors=[{"field": "body", "message": "must be a JSON object"}])
    where = lone_surrogate(data)
    if where is not None:
        message = "must be valid Unicode, got a lone surrogate (\\ud800-\\udfff escape)"
        raise HTTPError(422, f"{where}: {message}", errors=[{"field": where, "message": message}])
    return data


def lone_surrogate(data: Any) -> str | None:
    """The path of the first string (or key) in ``data`` holding a lone surrogate, or None.

    JSON's ``\\ud800`` escapes decode to such strings; tokenizers and UTF-8 writers refuse
    them, so they are stopped at the door for every route. Iterative: any depth.
    """
    stack: list[tuple[str, Any]] = [("body", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                name = key.encode("utf-8", "backslashreplace").decode("utf-8")  # printable
                child = name if path == "body" else f"{path}.{name}"
                stack += [(child, key), (child, item)]
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", item) for i, item in enumerate(value))
    return None


def create_app(models: dict[str, ServedModel], limits: Limits | None = None) -> FastAPI:
    """The app serving ``models`` (from ``load_models``) under ``limits``."""
    limits = limits or Limits()
    app = FastAPI(title="recur", version=_version(),
                  description="Recurrent models trained with recur: classify, generate, tag, "
                              "translate, forecast. Limits: " + ", ".join(
                                  f"{k} = {v}" for k, v in vars(limits).items()))
    app.state.models, app.state.limits, app.state.pending = models, limits, 0
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, error: HTTPError) -> JSONResponse:
        return error.response()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", summary="liveness and load")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": sorted(models), "pending": app.state.pending,
                "max_pending": limits.max_pending,
                "batches": {name: {"requests": m.worker.requests_run, "runs": m.worker.batches_run}
                            for name, m in models.items()}}

    @app.get("/models", summary="the served models: name, task, routes, config summary")
    async def list_models() -> dict[str, Any]:
        return {"models": [served.summary() for served in models.values()],
                "limits": vars(limits)}

    def lookup(name: str, route: str) -> ServedModel:
        served = models.get(name)
        if served is None:
            shown = name if NAME_PATTERN.fullmatch(name) else "(an invalid name)"
            raise HTTPError(404, f"no model named {shown}; served models: "
                                 f"{', '.join(sorted(models))}")
        if route not in served.handler.routes:
            able = [n for n, m in models.items() if route in m.handler.routes]
            raise HTTPError(400, f"model {name!r} is a {served.task} model; /{route} needs "
                                 f"{ROUTES[route]} (served models that take /{route}: "
                                 f"{', '.join(able) or 'none'})")
        return served

    def validate(served: ServedModel, route: str, data: dict[str, Any]) -> BaseModel:
        schema = served.handler.routes[route].request
        try:
            return schema.model_validate(data, context={"limits": limits})
        except ValidationError as error:
            errors = _error_list(error)
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise HTTPError(422, detail, errors=errors) from None

    def admit() -> None:
        if app.state.pending >= limits.max_pending:
            raise HTTPError(503, f"the server is at its limit of {limits.max_pending} requests "
                                 "in progress; retry later",
                            headers={"Retry-After": str(limits.retry_after_s)})
        app.state.pending += 1

    def release() -> None:
        app.state.pending -= 1

    def make_endpoint(route: str):
        async def endpoint(name: str, request: Request):
            served = lookup(name, route)
            data = await read_json_body(request, limits)
            parsed = validate(served, route, data)
            admit()
            if route in STREAMING_ROUTES:
                return _AdmittedStream(_sse(served, route, parsed), release=release,
                                       media_type="text/event-stream",
                                       headers={"Cache-Control": "no-cache"})
            try:
                response = await asyncio.wait_for(served.worker.call(route, parsed),
                                                  limits.request_timeout_s)
            except TimeoutError:
                raise HTTPError(504, f"the request took longer than request_timeout_s = "
                                     f"{limits.request_timeout_s} s") from None
            except RequestError as error:
                raise HTTPError(422, str(error)) from None
            except Exception:
                log.exception("route /%s of model %s failed", route, name)
                raise HTTPError(500, f"model {name!r} failed on this request; see the server "
                                     "log") from None
            finally:
                release()
            return JSONResponse(response.model_dump(mode="json"))
        endpoint.__name__ = f"{route}_endpoint"
        return endpoint

    async def _sse(served: ServedModel, route: str, parsed: BaseModel):
        deadline = time.monotonic() + limits.request_timeout_s
        try:
            async for event in served.worker.stream(route, parsed):
                yield f"data: {json.dumps(event)}\n\n"
                if time.monotonic() > deadline:
                    yield _sse_event("error", {"detail": "request_timeout_s reached"})
                    return
            yield _sse_event("done", {})
        except Exception:
            log.exception("stream /%s of model %s failed", route, served.name)
            yield _sse_event("error", {"detail": "the model failed; see the server log"})

    for route in ROUTES:
        request_models = _route_schemas(models, route)
        app.add_api_route(
            f"/v1/models/{{name}}/{route}", make_endpoint(route), methods=["POST"],
            summary=f"{route} with a served model ({ROUTES[route]})",
            openapi_extra=_openapi_body(request_models, route), response_model=None)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for served in models.values():
                for spec in served.handler.routes.values():
                    for model in (spec.request, spec.response):
                        definition = model.model_json_schema(
                            ref_template="#/components/schemas/{model}")
                        components.update(definition.pop("$defs", {}))
                        components[model.__name__] = definition
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class _AdmittedStream(StreamingResponse):
    """A streaming response that gives its admission slot back when it ends — sent, failed,
    or abandoned by a client that left before the first event."""

    def __init__(self, content, *, release, **options) -> None:
        super().__init__(content, **options)
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _sse_event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


def _route_schemas(models: dict[str, ServedModel], route: str) -> list[type[BaseModel]]:
    schemas: list[type[BaseModel]] = []
    for served in models.values():
        spec = served.handler.routes.get(route)
        if spec is not None and spec.request not in schemas:
            schemas.append(spec.request)
    return schemas


def _openapi_body(schemas: list[type[BaseModel]], route: str) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{s.__name__}"} for s in schemas]
    if not refs:
        schema: dict[str, Any] = {"type": "object",
                                  "description": f"no served model takes /{route}"}
    else:
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    media = "text/event-stream" if route in STREAMING_ROUTES else "application/json"
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"description": "the result", "content": {media: {}}}}}


def _version() -> str:
    from recur import __version__

    return __version__
