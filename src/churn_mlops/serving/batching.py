"""Micro-batching: concurrent requests share one call of a batch function.

Two calls have a fixed cost that barely depends on how many rows they carry: an ONNX
Runtime ``InferenceSession.run`` (input checks, conversion of the feeds, the graph's kernels
launched once per node) and an online-store read (a query per feature view, or a Redis
round trip). So the serving app queues small requests and makes one call for all of them:
``/v1/predict`` rows through the model's scorer, ``/v1/customers/*`` ids through the feature
store. There is no timer and no waiting: one batcher task takes what is in the queue when it
runs, so with one request in flight a batch is that request, and under load every request that
reached the queue during one event-loop turn (or, for an asynchronous call, while the previous
call was awaited) shares the call.

- A batch holds at most ``max_batch_rows`` rows (a single larger request goes alone) and one
  function only (a hot reload may leave requests for two models in the queue).
- The function takes a list of rows and returns something sliceable in the same order (an
  array of probabilities, :class:`~churn_mlops.feature_store.repository.OnlineFeatures`); a
  coroutine function is awaited on the loop.
- Errors stay with their request: when a batched call fails, each request of the batch is
  called again on its own, so only the one whose rows cause the failure gets the error.
- Admission (rows and requests in flight) is counted by the route before a request queues,
  so load shedding applies unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


class Scorer(Protocol):
    """What the batcher calls: a model's row scoring (``OnnxPredictor.predict_proba``)."""

    def predict_proba(self, rows: Sequence[Any]) -> FloatArray: ...


BatchFunction = Callable[[list[Any]], Any]
"""Rows in, a result sliceable by row (``result[start:end]``) out, or an awaitable of it."""


@dataclass(frozen=True)
class _Item:
    function: BatchFunction
    rows: list[Any]
    future: asyncio.Future[Any]


class MicroBatcher:
    """An asyncio queue of calls and one task that makes them in batches.

    The task starts with the first call on a running event loop (and again on a new loop,
    as each ``TestClient`` brings its own), so building an app starts nothing.

    Args:
        max_batch_rows: Most rows per call; ``CHURN_BATCH_MAX_ROWS``.
        name: What the calls are, for the task name and the shutdown log line.

    Raises:
        ValueError: ``max_batch_rows`` is below 1.
    """

    def __init__(self, max_batch_rows: int, name: str = "scoring") -> None:
        if max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be at least 1, got {max_batch_rows!r}")
        self.max_batch_rows = int(max_batch_rows)
        self.name = name
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._carry: _Item | None = None
        self.batches = 0
        self.batched_requests = 0

    async def score(self, scorer: Scorer, rows: Sequence[Any]) -> FloatArray:
        """Probabilities of ``rows`` from ``scorer``, possibly computed with other requests."""
        result: FloatArray = await self.call(scorer.predict_proba, rows)
        return result

    async def call(self, function: BatchFunction, rows: Sequence[Any]) -> Any:
        """``function(rows)``, possibly made as one call with the rows of other requests.

        Requests are batched only with requests for an equal ``function`` (the same bound
        method of the same object).
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        assert self._queue is not None
        future: asyncio.Future[Any] = loop.create_future()
        rows = rows if isinstance(rows, list) else list(rows)
        self._queue.put_nowait(_Item(function, rows, future))
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue = asyncio.Queue()
        self._carry = None
        self._task = loop.create_task(self._run(self._queue), name=f"churn-batcher-{self.name}")

    async def close(self) -> None:
        """Stop the batcher task (queued requests are answered first)."""
        task, queue = self._task, self._queue
        if task is None or queue is None or task.get_loop() is not asyncio.get_running_loop():
            return
        while self._carry is not None or not queue.empty():
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        self._task = None
        if self.batches:
            logger.info(
                "micro-batching (%s): %d requests in %d calls (%.1f per call)",
                self.name,
                self.batched_requests,
                self.batches,
                self.batched_requests / self.batches,
            )

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            first = self._carry
            self._carry = None
            if first is None:
                first = await queue.get()
            batch = self._take(first, queue)
            self.batches += 1
            self.batched_requests += len(batch)
            await _call_batch(batch)

    def _take(self, first: _Item, queue: asyncio.Queue[_Item]) -> list[_Item]:
        # Everything queued now arrived during the loop turn that woke this task.
        batch, n_rows = [first], len(first.rows)
        while not queue.empty():
            item = queue.get_nowait()
            if item.function != first.function or n_rows + len(item.rows) > self.max_batch_rows:
                self._carry = item  # first of the next batch
                break
            batch.append(item)
            n_rows += len(item.rows)
        return batch


async def _call_batch(batch: list[_Item]) -> None:
    live = [item for item in batch if not item.future.done()]  # callers may have gone away
    if not live:
        return
    if len(live) == 1:
        await _call_alone(live[0])
        return
    try:
        result = await _made(live[0].function([row for item in live for row in item.rows]))
    except Exception:  # noqa: BLE001 - find the request that fails; the others are answered
        logger.debug("a batch of %d requests failed; calling them one by one", len(live))
        for item in live:
            await _call_alone(item)
        return
    start = 0
    for item in live:
        end = start + len(item.rows)
        if not item.future.done():
            item.future.set_result(result[start:end])
        start = end


async def _call_alone(item: _Item) -> None:
    try:
        result = await _made(item.function(item.rows))
    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
        if not item.future.done():
            item.future.set_exception(exc)
    else:
        if not item.future.done():
            item.future.set_result(result)


async def _made(result: Any) -> Any:
    """The result of a call: awaited when the function was a coroutine function."""
    if inspect.isawaitable(result):
        return await result
    return result
