"""Micro-batching: concurrent predict requests share one ONNX Runtime call, each gets its rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from churn_mlops.serving.app import create_app
from churn_mlops.serving.batching import MicroBatcher
from churn_mlops.serving.runtime import OnnxPredictor
from churn_mlops.serving.settings import ServingSettings


@pytest.fixture(scope="module")
def xgb_predictor(xgb_bundle: Path) -> OnnxPredictor:
    return OnnxPredictor(xgb_bundle)


async def _score_all(
    batcher: MicroBatcher, calls: Sequence[tuple[OnnxPredictor, list[dict[str, Any]]]]
) -> list[Any]:
    try:
        return await asyncio.gather(
            *(batcher.score(predictor, rows) for predictor, rows in calls),
            return_exceptions=True,
        )
    finally:
        await batcher.close()


def test_concurrent_requests_share_model_calls_and_get_their_own_rows(
    xgb_predictor: OnnxPredictor, sample_rows: list[dict[str, Any]]
) -> None:
    batcher = MicroBatcher(max_batch_rows=64)
    requests = [sample_rows[i : i + 2] for i in range(0, 40, 2)]  # 20 requests of 2 rows
    answers = asyncio.run(_score_all(batcher, [(xgb_predictor, rows) for rows in requests]))
    for rows, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer, xgb_predictor.predict_proba(rows), rtol=0, atol=1e-12)
    assert batcher.batched_requests == 20
    assert batcher.batches < 20  # several requests went through one model call


def test_a_batch_never_holds_more_rows_than_the_cap(
    xgb_predictor: OnnxPredictor, sample_rows: list[dict[str, Any]]
) -> None:
    batcher = MicroBatcher(max_batch_rows=4)
    calls = [(xgb_predictor, [row]) for row in sample_rows[:10]]
    calls.append((xgb_predictor, sample_rows[:9]))  # larger than the cap: scored alone
    answers = asyncio.run(_score_all(batcher, calls))
    assert [len(a) for a in answers] == [1] * 10 + [9]
    assert batcher.batches == 4  # 4 + 4 + 2 single rows, then the 9-row request alone


def test_a_failing_request_does_not_fail_the_others_of_its_batch(
    xgb_predictor: OnnxPredictor, sample_rows: list[dict[str, Any]]
) -> None:
    numeric = xgb_predictor.numeric[0]
    broken = [{**sample_rows[0], numeric: "not a number"}]
    calls = [(xgb_predictor, [row]) for row in sample_rows[:5]]
    calls.insert(2, (xgb_predictor, broken))
    batcher = MicroBatcher(max_batch_rows=64)
    answers = asyncio.run(_score_all(batcher, calls))
    assert isinstance(answers[2], ValueError)
    good = [a for i, a in enumerate(answers) if i != 2]
    for row, answer in zip(sample_rows[:5], good, strict=True):
        np.testing.assert_allclose(answer, xgb_predictor.predict_proba([row]), atol=1e-12)
    assert batcher.batches == 1  # one batch; its failure was resolved request by request


def test_two_models_are_never_mixed_in_one_call(
    xgb_predictor: OnnxPredictor, lr_bundle: Path, sample_rows: list[dict[str, Any]]
) -> None:
    # A hot reload can leave requests for the old and the new model in the queue.
    lr_predictor = OnnxPredictor(lr_bundle)
    calls = [(xgb_predictor if i % 2 else lr_predictor, [row]) for i, row in enumerate(sample_rows)]
    answers = asyncio.run(_score_all(MicroBatcher(max_batch_rows=64), calls))
    for (predictor, rows), answer in zip(calls, answers, strict=True):
        np.testing.assert_allclose(answer, predictor.predict_proba(rows), atol=1e-12)


def test_a_cap_below_one_row_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_rows must be at least 1, got 0"):
        MicroBatcher(max_batch_rows=0)


def test_concurrent_predict_requests_are_batched_by_the_app(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict[str, str],
    sample_rows: list[dict[str, Any]],
) -> None:
    app = create_app(make_settings(xgb_bundle))
    state = app.state.churn

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await asyncio.gather(
                    *(
                        client.post("/v1/predict", json={"rows": [row]}, headers=auth)
                        for row in sample_rows[:16]
                    )
                )

    answers = asyncio.run(run())
    expected = state.store.current.predictor.predict_proba(sample_rows[:16])
    got = [r.json()["predictions"][0]["probability"] for r in answers]
    assert [r.status_code for r in answers] == [200] * 16
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert state.batcher.batched_requests == 16
    assert state.batcher.batches < 16


def test_onnx_session_threads_come_from_the_settings(
    xgb_bundle: Path, make_settings: Callable[..., ServingSettings]
) -> None:
    from churn_mlops.serving.model_store import load_model

    settings = make_settings(xgb_bundle, onnx_intra_op_threads=2, onnx_inter_op_threads=3)
    options = load_model(xgb_bundle, settings).predictor.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 3)


def test_a_coroutine_function_is_awaited_and_requests_queued_meanwhile_share_the_next_call() -> (
    None
):
    calls: list[list[int]] = []

    async def read(ids: list[int]) -> list[int]:
        calls.append(list(ids))
        await asyncio.sleep(0.01)  # requests arriving now queue for the next call
        return [i * 10 for i in ids]

    async def run() -> list[Any]:
        batcher = MicroBatcher(max_batch_rows=64)
        try:
            first = asyncio.ensure_future(batcher.call(read, [1]))
            await asyncio.sleep(0)  # the first call starts alone
            await asyncio.sleep(0)
            rest = [batcher.call(read, [i, i + 100]) for i in range(2, 6)]
            return [await first, *(await asyncio.gather(*rest))]
        finally:
            await batcher.close()

    answers = asyncio.run(run())
    assert answers == [[10], *([i * 10, (i + 100) * 10] for i in range(2, 6))]
    assert calls == [[1], [2, 102, 3, 103, 4, 104, 5, 105]]
