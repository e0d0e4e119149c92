"""Micro-batching: concurrent ``/v1/predict`` requests share one ``InferenceSession.run`` call.

An ONNX Runtime call has a fixed cost (input checks, conversion of the feeds, the graph's
kernels launched once per node) that barely depends on the number of rows, so requests are
queued and scored together. There is no timer and no waiting: one batcher task takes what
is in the queue when it runs, so with one request in flight a batch is that request, and
under load every request that reached the queue during one event-loop turn shares the call.

- A batch holds at most ``max_batch_rows`` rows (a single larger request goes alone) and one
  model only (a hot reload may leave requests for both models in the queue).
- Errors stay with their request: when a batched call fails, each request of the batch is
  scored again on its own, so only the one whose rows cause the failure gets the error.
- Admission (rows and requests in flight) is counted by the route before a request queues,
  so load shedding applies unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


class Scorer(Protocol):
    """What the batcher calls: a model's row scoring (``OnnxPredictor.predict_proba``)."""

    def predict_proba(self, rows: Sequence[Any]) -> FloatArray: ...


@dataclass(frozen=True)
class _Item:
    scorer: Scorer
    rows: Sequence[Any]
    future: asyncio.Future[FloatArray]


class MicroBatcher:
    """An asyncio queue of scoring calls and one task that scores them in batches.

    The task starts with the first call on a running event loop (and again on a new loop,
    as each ``TestClient`` brings its own), so building an app starts nothing.

    Args:
        max_batch_rows: Most rows per model call; ``CHURN_BATCH_MAX_ROWS``.

    Raises:
        ValueError: ``max_batch_rows`` is below 1.
    """

    def __init__(self, max_batch_rows: int) -> None:
        if max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be at least 1, got {max_batch_rows!r}")
        self.max_batch_rows = int(max_batch_rows)
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._carry: _Item | None = None
        self.batches = 0
        self.batched_requests = 0

    async def score(self, scorer: Scorer, rows: Sequence[Any]) -> FloatArray:
        """Probabilities of ``rows`` from ``scorer``, possibly computed with other requests."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        assert self._queue is not None
        future: asyncio.Future[FloatArray] = loop.create_future()
        self._queue.put_nowait(_Item(scorer, rows, future))
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue = asyncio.Queue()
        self._carry = None
        self._task = loop.create_task(self._run(self._queue), name="churn-batcher")

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
                "micro-batching: %d requests scored in %d model calls (%.1f per call)",
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
            _score_batch(batch)

    def _take(self, first: _Item, queue: asyncio.Queue[_Item]) -> list[_Item]:
        # Everything queued now arrived during the loop turn that woke this task.
        batch, n_rows = [first], len(first.rows)
        while not queue.empty():
            item = queue.get_nowait()
            if item.scorer is not first.scorer or n_rows + len(item.rows) > self.max_batch_rows:
                self._carry = item  # first of the next batch
                break
            batch.append(item)
            n_rows += len(item.rows)
        return batch


def _score_batch(batch: list[_Item]) -> None:
    live = [item for item in batch if not item.future.done()]  # callers may have gone away
    if not live:
        return
    if len(live) == 1:
        _score_alone(live[0])
        return
    try:
        scores = live[0].scorer.predict_proba([row for item in live for row in item.rows])
    except Exception:  # noqa: BLE001 - find the request that fails; the others are answered
        logger.debug("a batch of %d requests failed; scoring them one by one", len(live))
        for item in live:
            _score_alone(item)
        return
    start = 0
    for item in live:
        end = start + len(item.rows)
        item.future.set_result(scores[start:end])
        start = end


def _score_alone(item: _Item) -> None:
    try:
        scores = item.scorer.predict_proba(item.rows)
    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
        item.future.set_exception(exc)
    else:
        item.future.set_result(scores)
