"""Rotating JSON-lines sinks for the prediction log and the feedback log.

Files are ``<prefix>-<UTC timestamp>.jsonl`` in the log folder; a new file starts once the
current one reaches ``max_bytes``. Records are buffered in memory and written as whole lines
on :meth:`JsonLinesSink.flush` (the app flushes every 0.25 s and at shutdown, and whenever the
buffer grows past 256 KiB), so a reader never sees half a line unless the process dies in the
middle of a write. Thread-safe.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

FLUSH_AT_BYTES = 256 * 1024
"""Buffered bytes that trigger a write without waiting for the periodic flush."""

FLUSH_AT_ROWS = 2000
"""Queued prediction rows that trigger a write without waiting for the periodic flush."""

_PredictionBatch = tuple[str, str, list[str], list[dict[str, Any]], list[float], list[int]]


def dump_line(record: Mapping[str, Any]) -> bytes:
    """One JSON line; a record orjson refuses (an integer beyond 64 bits, say) falls back to
    the standard library, so that one odd record can never cost the others their line."""
    try:
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    except (orjson.JSONEncodeError, TypeError):
        logger.warning("a %d-key log record needed the slow JSON encoder", len(record))
        return json.dumps(record, default=str, allow_nan=True).encode() + b"\n"


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, e.g. ``2026-01-31T12:00:00.123Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLinesSink:
    """Append-only JSON-lines files rotated by size.

    Args:
        directory: Folder of the files (created on first write).
        prefix: File name prefix (``predictions`` or ``feedback``).
        max_bytes: Size at which the next write goes to a new file.
        max_files: Keep at most this many files of this prefix (0: keep all).
    """

    def __init__(self, directory: Path, prefix: str, *, max_bytes: int, max_files: int = 0):
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_bytes = int(max_bytes)
        self.max_files = int(max_files)
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._batches: list[_PredictionBatch] = []
        self._batched_rows = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self.records_written = 0

    @property
    def current_path(self) -> Path | None:
        """The file being appended to (None before the first flush)."""
        return self._path

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Queue records; they reach the file on the next flush."""
        lines = [dump_line(r) for r in records]
        if not lines:
            return
        with self._lock:
            self._buffer.extend(lines)
            self._buffered += sum(len(line) for line in lines)
            if self._buffered >= FLUSH_AT_BYTES:
                self._flush_locked()

    def write_predictions(
        self,
        timestamp: str,
        model_version: str,
        request_ids: list[str],
        rows: list[dict[str, Any]],
        scores: list[float],
        labels: list[int],
    ) -> None:
        """Queue the prediction-log records of one request (built at flush time, off the
        request path). ``rows`` must not be mutated afterwards; ``customer_id`` in a row goes to
        the record's top level, every other key under ``features``."""
        with self._lock:
            self._batches.append((timestamp, model_version, request_ids, rows, scores, labels))
            self._batched_rows += len(rows)
            if self._batched_rows >= FLUSH_AT_ROWS:
                self._flush_locked()

    def _render_batches(self) -> None:
        batches, self._batches, self._batched_rows = self._batches, [], 0
        dumps = orjson.dumps
        for timestamp, version, ids, rows, scores, labels in batches:
            for rid, row, score, label in zip(ids, rows, scores, labels, strict=True):
                record: dict[str, Any] = {
                    "request_id": rid,
                    "timestamp": timestamp,
                    "model_version": version,
                }
                customer_id = row.get("customer_id")
                if customer_id is not None:
                    record["customer_id"] = customer_id
                record["features"] = {k: v for k, v in row.items() if k != "customer_id"}
                record["score"] = score
                record["label"] = label
                try:
                    line = dumps(record) + b"\n"
                except (orjson.JSONEncodeError, TypeError):
                    line = dump_line(record)
                self._buffer.append(line)
                self._buffered += len(line)

    def flush(self) -> None:
        """Write every queued record as whole lines."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush and close the current file."""
        with self._lock:
            self._flush_locked()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _flush_locked(self) -> None:
        if self._batches:
            self._render_batches()
        if not self._buffer:
            return
        lines, self._buffer, self._buffered = self._buffer, [], 0
        start = 0
        while start < len(lines):
            if self._fd is None or (
                self._size > 0 and self._size + len(lines[start]) > self.max_bytes
            ):
                self._rotate()
            # Fill the current file up to max_bytes with whole lines; a line longer than
            # max_bytes gets a file of its own.
            end, size = start, 0
            room = max(self.max_bytes - self._size, 1)
            while end < len(lines) and (end == start or size + len(lines[end]) <= room):
                size += len(lines[end])
                end += 1
            data = b"".join(lines[start:end])
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)  # type: ignore[arg-type]
                    view = view[written:]
            except OSError:
                logger.exception("could not write %d records to %s", end - start, self._path)
                return
            self._size += size
            self.records_written += end - start
            start = end

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{self.prefix}-{stamp}.jsonl"
        counter = 1
        while path.exists():
            path = self.directory / f"{self.prefix}-{stamp}-{counter}.jsonl"
            counter += 1
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._path = path
        self._size = 0
        logger.info("writing %s records to %s", self.prefix, path)
        self._prune()

    def _prune(self) -> None:
        if self.max_files <= 0:
            return
        files = sorted(self.directory.glob(f"{self.prefix}-*.jsonl"))
        for old in files[: max(0, len(files) - self.max_files)]:
            if old != self._path:
                try:
                    old.unlink()
                except OSError:
                    logger.warning("could not remove old log file %s", old)
