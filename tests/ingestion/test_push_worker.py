"""The online push runs off the consume loop: hand-over returns at once, batches queued during a
push go out together in commit order, failures are counted, shutdown drains."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from churn_mlops.ingestion.push_worker import PushWorker


def _batch(*ids: int) -> list[pa.Table]:
    return [pa.table({"customer_id": list(ids)})]


class Recorder:
    """A refresh that records what it was given and blocks until released (per call)."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.calls: list[list[int]] = []
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.fail_on = fail_on or set()
        self.pushed: list[int] = []
        self.failures = 0

    def refresh(self, tables: list[pa.Table]) -> int:
        ids = [i for t in tables for i in t.column("customer_id").to_pylist()]
        self.calls.append(ids)
        self.started.release()
        assert self.release.wait(10), "test never released the push"
        if self.fail_on & set(ids):
            raise RuntimeError("online store unreachable")
        return len(ids)

    def worker(self) -> PushWorker:
        return PushWorker(
            self.refresh,
            on_pushed=self.pushed.append,
            on_failed=lambda: setattr(self, "failures", self.failures + 1),
        )


def test_hand_over_returns_while_a_push_runs_and_queued_batches_go_out_together():
    recorder = Recorder()
    worker = recorder.worker()
    worker.submit(_batch(1, 2))
    assert recorder.started.acquire(timeout=5)  # the first push is running, and blocked
    worker.submit(_batch(3))  # returns although the push has not finished
    worker.submit(_batch(4, 5))
    assert worker.pending_batches == 3
    recorder.release.set()
    assert worker.wait_idle(timeout=10)
    assert recorder.calls == [[1, 2], [3, 4, 5]]  # commit order; the two queued ones merged
    assert recorder.pushed == [2, 3]
    assert worker.pending_batches == 0
    assert worker.close(timeout=5)


def test_a_failed_push_is_counted_and_the_next_batch_still_goes_out(caplog):
    recorder = Recorder(fail_on={7})
    recorder.release.set()
    worker = recorder.worker()
    worker.submit(_batch(7))
    assert worker.wait_idle(timeout=10)
    worker.submit(_batch(8))
    assert worker.close(timeout=10)
    assert recorder.failures == 1 and recorder.pushed == [1]
    assert "online push of 1 batch(es) failed" in caplog.text
    assert "online store unreachable" in caplog.text


def test_close_pushes_what_was_handed_over_then_refuses_more():
    recorder = Recorder()
    worker = recorder.worker()
    worker.submit(_batch(1))
    worker.submit(_batch(2))
    recorder.release.set()
    assert worker.close(timeout=10)
    assert sorted(i for call in recorder.calls for i in call) == [1, 2]
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(_batch(3))


def test_close_gives_up_after_its_timeout_and_says_what_is_left(caplog):
    recorder = Recorder()
    worker = recorder.worker()
    worker.submit(_batch(1))
    assert recorder.started.acquire(timeout=5)
    assert worker.close(timeout=0.2) is False  # the push is stuck
    assert "1 batch(es) not pushed within 0.2 s at shutdown" in caplog.text
    recorder.release.set()  # let the daemon thread end
