"""Run the online push off the consume loop: one worker thread, batches merged while it works.

A push recomputes and writes the online rows of a committed batch's customers
(:class:`~churn_mlops.ingestion.online_push.OnlinePush`); it costs seconds, so running it in the
consume loop would hold up polling and landing. :class:`PushWorker` takes the landed tables of
each committed batch and pushes them on its own thread, one push at a time, in commit order.
Batches committed while a push runs wait together and go out as one push (the newest row of
each customer wins either way). Exactly-once is about the landed files and the committed
offsets, which are final before a batch is handed over; a push that fails or never runs (the
process killed) leaves the online rows as they were until the next push or materialization.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pyarrow as pa

logger = logging.getLogger(__name__)


class PushWorker:
    """Pushes handed-over batches on a background thread.

    Args:
        refresh: Pushes the landed tables of one or more batches; returns the rows pushed.
        on_pushed: Called with that count after each push.
        on_failed: Called after a push that raised (already logged with its traceback).
    """

    def __init__(
        self,
        refresh: Callable[[list[pa.Table]], int],
        *,
        on_pushed: Callable[[int], None],
        on_failed: Callable[[], None],
    ) -> None:
        self._refresh = refresh
        self._on_pushed = on_pushed
        self._on_failed = on_failed
        self._queued: list[list[pa.Table]] = []
        self._in_flight = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="churn-online-push", daemon=True)
        self._thread.start()

    @property
    def pending_batches(self) -> int:
        """Batches handed over and not pushed yet (the one being pushed included)."""
        with self._changed:
            return len(self._queued) + self._in_flight

    def submit(self, landed: list[pa.Table]) -> None:
        """Hand over the landed tables of one committed batch; returns at once.

        Raises:
            RuntimeError: the worker is closed.
        """
        with self._changed:
            if self._closed:
                raise RuntimeError("the online push worker is closed")
            self._queued.append(list(landed))
            self._changed.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every handed-over batch is pushed (or failed); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queued and not self._in_flight, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Push what is handed over, then stop the thread; False when ``timeout`` ran out
        first (the rest is left to the next push or materialization)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "online push: %d batch(es) not pushed within %.1f s at shutdown; their "
                "customers' online rows refresh at the next push or materialization",
                self.pending_batches,
                timeout or 0.0,
            )
            return False
        return True

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queued) or self._closed)
                if not self._queued:
                    return  # closed and drained
                batches, self._queued = self._queued, []
                self._in_flight = len(batches)
            self._push([table for batch in batches for table in batch], len(batches))
            with self._changed:
                self._in_flight = 0
                self._changed.notify_all()

    def _push(self, tables: list[pa.Table], batches: int) -> None:
        try:
            pushed = self._refresh(tables)
        except Exception:
            logger.exception(
                "online push of %d batch(es) failed; online rows keep their last pushed values",
                batches,
            )
            self._on_failed()
            return
        self._on_pushed(pushed)
