"""Micro-batching: concurrent calls share model calls, each gets its own rows' answers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from churn_mlops.serving.batching import MicroBatcher


class Echo:
    """Scores a row as its ``x``; records every call's row count."""

    def __init__(self, offset: float = 0.0) -> None:
        self.calls: list[int] = []
        self.offset = offset

    def predict_proba(self, rows):
        self.calls.append(len(rows))
        return np.array([r["x"] + self.offset for r in rows], dtype=np.float64)


class Broken:
    def predict_proba(self, rows):
        raise RuntimeError("model failure")


async def _fire(batcher: MicroBatcher, scorer, requests: list[list[dict]]):
    return await asyncio.gather(*(batcher.predict(scorer, rows) for rows in requests))


@pytest.mark.parametrize("mode", ["loop", "thread"])
def test_concurrent_requests_are_batched_and_answered_separately(mode: str) -> None:
    batcher = MicroBatcher(max_batch_rows=64, mode=mode)
    echo = Echo()
    requests = [[{"x": float(i)}, {"x": float(i) + 0.5}] for i in range(100)]
    try:
        answers = asyncio.run(_fire(batcher, echo, requests))
    finally:
        batcher.close()
    for i, answer in enumerate(answers):
        assert answer.tolist() == [float(i), float(i) + 0.5]
    assert sum(echo.calls) == 200
    assert len(echo.calls) < 100  # rows of several requests went through one model call
    assert max(echo.calls) <= 64  # never more rows per call than the cap


def test_a_request_larger_than_the_cap_goes_alone() -> None:
    batcher = MicroBatcher(max_batch_rows=4)
    echo = Echo()
    answers = asyncio.run(_fire(batcher, echo, [[{"x": 1.0}] * 10, [{"x": 2.0}]]))
    assert answers[0].tolist() == [1.0] * 10 and answers[1].tolist() == [2.0]
    assert echo.calls == [10, 1]


def test_two_models_are_never_mixed_in_one_batch() -> None:
    batcher = MicroBatcher(max_batch_rows=100)
    old, new = Echo(), Echo(offset=100.0)

    async def run():
        calls = [batcher.predict(old if i % 2 else new, [{"x": float(i)}]) for i in range(20)]
        return await asyncio.gather(*calls)

    answers = asyncio.run(run())
    for i, answer in enumerate(answers):
        assert answer.tolist() == [float(i) + (0.0 if i % 2 else 100.0)]
    assert sum(old.calls) == sum(new.calls) == 10


@pytest.mark.parametrize("mode", ["loop", "thread"])
def test_a_model_failure_reaches_every_request_of_the_batch(mode: str) -> None:
    batcher = MicroBatcher(max_batch_rows=64, mode=mode)

    async def run():
        return await asyncio.gather(
            *(batcher.predict(Broken(), [{"x": 1.0}]) for _ in range(5)), return_exceptions=True
        )

    try:
        results = asyncio.run(run())
    finally:
        batcher.close()
    assert all(isinstance(r, RuntimeError) for r in results)
