"""One worker thread per served model, and micro-batching of concurrent requests.

Each model runs in its own single-thread executor, so its ``run`` calls never overlap
(torch modules are not re-entrant; one model's work never waits on another's). Requests
for a batchable route go through a queue: the route's loop takes the first waiting
request, then every request already waiting (up to ``max_batch_size`` items, counting a
request's texts), optionally waits ``batch_wait_ms`` for more, and runs them as one call.
Requests that arrive while a batch runs form the next one, so under load batches grow by
themselves and an idle server adds no delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from recur.serve.handlers import Route
from recur.serve.limits import Limits

_END = object()


class _Pending(NamedTuple):
    request: Any
    future: asyncio.Future
    cost: int


def request_cost(request: Any) -> int:
    """Items a request adds to a micro-batch: its number of texts (or 1)."""
    texts = getattr(request, "texts", None)
    return max(1, len(texts)) if isinstance(texts, list) else 1


class ModelWorker:
    """Runs one model's routes: ``await call(route, request)`` and ``stream(route, request)``."""

    def __init__(self, name: str, model: Any, routes: dict[str, Route], limits: Limits) -> None:
        self.name, self.model, self.routes, self.limits = name, model, routes, limits
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"recur-{name}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, asyncio.Queue] = {}
        self._tasks: list[asyncio.Task] = []
        self.batches_run = 0          # run calls made (for tests and /health)
        self.requests_run = 0

    def _queue(self, route: str) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new event loop (e.g. a new test client)
            self._loop, self._queues, self._tasks = loop, {}, []
        if route not in self._queues:
            queue: asyncio.Queue = asyncio.Queue()
            self._queues[route] = queue
            self._tasks.append(loop.create_task(self._batch_loop(route, queue)))
        return self._queues[route]

    async def call(self, route: str, request: Any) -> Any:
        """The response to one request (micro-batched with others when the route allows)."""
        spec = self.routes[route]
        loop = asyncio.get_running_loop()
        if not spec.batch:
            responses = await loop.run_in_executor(self.executor, self._run, spec, [request])
            return responses[0]
        future = loop.create_future()
        self._queue(route).put_nowait(_Pending(request, future, request_cost(request)))
        return await future

    def _run(self, spec: Route, requests: list[Any]) -> list[Any]:
        responses = spec.run(self.model, requests, self.limits)
        if len(responses) != len(requests):
            raise RuntimeError(f"route run returned {len(responses)} responses for "
                               f"{len(requests)} requests")
        self.batches_run += 1
        self.requests_run += len(requests)
        return responses

    async def _batch_loop(self, route: str, queue: asyncio.Queue) -> None:
        spec, loop = self.routes[route], asyncio.get_running_loop()
        carry: _Pending | None = None
        while True:
            first = carry if carry is not None else await queue.get()
            carry = None
            batch, size = [first], first.cost
            for attempt in range(2):
                while size < self.limits.max_batch_size and not queue.empty():
                    item = queue.get_nowait()
                    if size + item.cost > self.limits.max_batch_size:
                        carry = item
                        break
                    batch.append(item)
                    size += item.cost
                if carry is not None or attempt == 1 or size >= self.limits.max_batch_size \
                        or not self.limits.batch_wait_ms:
                    break
                await asyncio.sleep(self.limits.batch_wait_ms / 1000)
            batch = [item for item in batch if not item.future.done()]  # timed out: skip
            if not batch:
                continue
            try:
                responses = await loop.run_in_executor(self.executor, self._run, spec,
                                                       [item.request for item in batch])
            except Exception as error:  # every request of the batch gets the error
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            for item, response in zip(batch, responses, strict=True):
                if not item.future.done():
                    item.future.set_result(response)

    async def stream(self, route: str, request: Any) -> AsyncIterator[dict[str, Any]]:
        """The events of a streaming route, each step run in the model's thread."""
        spec = self.routes[route]
        loop = asyncio.get_running_loop()
        events = await loop.run_in_executor(self.executor, spec.stream, self.model, request,
                                            self.limits)
        events = iter(events)
        while True:
            event = await loop.run_in_executor(self.executor, next, events, _END)
            if event is _END:
                return
            yield event

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)
