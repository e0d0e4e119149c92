"""Micro-batching: concurrent predict calls share one model call.

XGBoost's ``inplace_predict`` costs about the same for one row as for a few dozen, so
requests are queued and scored together (up to ``max_batch_rows`` rows, one model version per
batch). There is no timer and no waiting: with one request in flight a batch is that request;
under load the batches grow by themselves. Two modes:

- ``loop`` (default): the batch is scored on the event loop at the end of the loop iteration
  in which the first request queued, together with every request that queued in the same
  iteration. No thread hand-off, which is what a one-worker process on few cores wants.
- ``thread``: the batch is scored on one worker thread while the event loop keeps parsing
  requests (XGBoost releases the GIL); whatever queued meanwhile is the next batch. Pays a
  thread hand-off per batch; worth it with spare cores and heavy models.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class _Scorer(Protocol):
    def predict_proba(self, rows: list[Any]) -> np.ndarray: ...


@dataclass
class _Item:
    scorer: _Scorer
    rows: list[Any]
    future: asyncio.Future[np.ndarray]


class MicroBatcher:
    """Queue of predict calls scored together; see the module docstring.

    Args:
        max_batch_rows: Most rows per model call (a larger single request still goes alone).
        mode: ``"loop"``: score on the event loop once per loop iteration, everything that
            queued during the iteration together; ``"thread"``: score on one worker thread,
            everything that queued while it was busy together.
    """

    def __init__(self, max_batch_rows: int, mode: str = "loop") -> None:
        if mode not in ("loop", "thread"):
            raise ValueError(f"batching mode {mode!r} is not known; expected 'loop' or 'thread'")
        self.max_batch_rows = int(max_batch_rows)
        self.mode = mode
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="churn-predict")
            if mode == "thread"
            else None
        )
        self._queue: list[_Item] = []
        self._busy = False
        self.batches = 0
        self.batched_requests = 0

    async def predict(self, scorer: _Scorer, rows: list[Any]) -> np.ndarray:
        """Probabilities of ``rows`` from ``scorer``, possibly computed with other requests."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.append(_Item(scorer, rows, future))
        if not self._busy:
            self._busy = True
            if self._executor is None:
                loop.call_soon(self._score_on_loop)
            else:
                self._dispatch(loop)
        return await future

    def _score_on_loop(self) -> None:
        # Every request that reached the batcher during the last loop iteration is queued.
        while self._queue:
            batch = self._take()
            try:
                scores = _score(batch)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
                _fail(batch, exc)
            else:
                _deliver(batch, scores)
        self._busy = False

    def _take(self) -> list[_Item]:
        # Runs on the event loop thread only, so the queue needs no lock.
        first = self._queue[0]
        taken, n_rows = 0, 0
        for item in self._queue:
            if item.scorer is not first.scorer:
                break  # one model per batch: a hot reload may leave both in the queue
            if taken and n_rows + len(item.rows) > self.max_batch_rows:
                break
            taken += 1
            n_rows += len(item.rows)
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        self.batches += 1
        self.batched_requests += len(batch)
        return batch

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._take()
        self._busy = True
        assert self._executor is not None
        done = self._executor.submit(_score, batch)
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(self._complete, loop, batch, f))

    def _complete(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Item], done: Future[np.ndarray]
    ) -> None:
        self._busy = False
        error = done.exception()
        if error is None:
            _deliver(batch, done.result())
        else:
            _fail(batch, error)
        if self._queue:
            self._dispatch(loop)

    def close(self) -> None:
        """Stop the worker thread (if any) after the queued batches."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def _deliver(batch: list[_Item], scores: np.ndarray) -> None:
    start = 0
    for item in batch:
        end = start + len(item.rows)
        if not item.future.done():  # the client may have gone away
            item.future.set_result(scores[start:end])
        start = end


def _fail(batch: list[_Item], error: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(error)


def _score(batch: list[_Item]) -> np.ndarray:
    if len(batch) == 1:
        return batch[0].scorer.predict_proba(batch[0].rows)
    rows = [row for item in batch for row in item.rows]
    return batch[0].scorer.predict_proba(rows)
