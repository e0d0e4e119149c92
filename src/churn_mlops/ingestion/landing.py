"""The raw landing area: durable, atomically renamed Parquet files named by their offsets.

Layout (``landing_dir``)::

    <table>/event_date=YYYY-MM-DD/<topic>+<partition>+<first offset>-<last offset>.parquet
    _quarantine/<topic>+<partition>+<first offset>-<last offset>.jsonl

A file is written under a hidden temporary name (``.<name>.tmp``), flushed, fsynced, renamed
into place and its folder fsynced: readers that match ``*.parquet`` see whole files only. The
offsets in the name make a replay of the same messages rewrite the same file, and let a
restarted consumer remove what it wrote after its last commit before it re-reads those offsets.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

QUARANTINE_FOLDER = "_quarantine"
"""Subfolder of the landing area holding the refused messages, one JSON line each."""

NULL_DATE = "__HIVE_DEFAULT_PARTITION__"
"""Partition of rows without an event time (Hive's name for a null partition value)."""

_NAME = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<partition>\d+)\+(?P<first>\d+)-(?P<last>\d+)\."
)


@dataclass(frozen=True)
class OffsetRange:
    """The messages ``first..last`` (inclusive) of one topic partition."""

    topic: str
    partition: int
    first: int
    last: int

    def file_stem(self) -> str:
        """``<topic>+<partition>+<first>-<last>``, zero-padded so names sort by offset."""
        return f"{self.topic}+{self.partition}+{self.first:020d}-{self.last:020d}"

    @classmethod
    def from_name(cls, name: str) -> OffsetRange | None:
        """The range a landed file's name carries (None for any other file)."""
        match = _NAME.match(name)
        if match is None:
            return None
        return cls(match["topic"], int(match["partition"]), int(match["first"]), int(match["last"]))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write and fsync the hidden temporary file of ``path``; returns the temporary path."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, fsyncing each parent that gained an entry."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        _fsync_dir(folder.parent)


def write_atomically(files: dict[Path, Callable[[IO[bytes]], Any]]) -> list[Path]:
    """Write each file through a temporary one: fsync all, rename all, fsync their folders.

    A crash at any point leaves, for each path, the previous file (or none) or the complete new
    one, plus at worst hidden ``.tmp`` files that `Landing.discard_uncommitted` removes.
    Folders are fsynced once per call, not once per file.
    """
    for path in files:
        _make_dirs(path.parent)
    temporary = {path: _write_synced(path, write) for path, write in files.items()}
    for path, tmp in temporary.items():
        os.replace(tmp, path)
    for folder in {path.parent for path in files}:
        _fsync_dir(folder)
    return list(files)


class Landing:
    """Writes and reconciles the landing area of the raw tables."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def quarantine_dir(self) -> Path:
        return self.root / QUARANTINE_FOLDER

    def write_rows(
        self, table: str, offsets: OffsetRange, rows: pa.Table, date_column: str
    ) -> list[Path]:
        """Land ``rows`` as one Parquet file per event date; returns the files written."""
        if rows.num_rows == 0:
            return []
        dates = pc.cast(rows[date_column], pa.date32())
        files = {}
        for day in pc.unique(dates).to_pylist():
            if day is None:
                part, folder = rows.filter(pc.is_null(dates)), NULL_DATE
            else:
                part, folder = rows.filter(pc.equal(dates, day)), day.isoformat()
            path = self.root / table / f"event_date={folder}" / f"{offsets.file_stem()}.parquet"
            files[path] = lambda handle, _p=part: pq.write_table(_p, handle)
        return write_atomically(files)

    def write_quarantine(self, offsets: OffsetRange, records: list[dict[str, Any]]) -> Path | None:
        """Land the refused messages of a batch (one JSON object per line, with the reason)."""
        if not records:
            return None
        body = b"".join(orjson.dumps(record) + b"\n" for record in records)
        path = self.quarantine_dir / f"{offsets.file_stem()}.jsonl"
        return write_atomically({path: lambda handle: handle.write(body)})[0]

    def table_files(self, table: str, *, since: dt.date | None = None) -> list[Path]:
        """The complete files of ``table`` (what the streaming catalog reads), sorted.

        With ``since``, only the event dates from that day on (rows without an event time are
        left out).
        """
        files = []
        for folder in sorted((self.root / table).glob("event_date=*")):
            day = folder.name.removeprefix("event_date=")
            if since is not None and (day == NULL_DATE or dt.date.fromisoformat(day) < since):
                continue
            files.extend(sorted(folder.glob("*.parquet")))
        return files

    def landed(self, topic: str, partition: int) -> list[tuple[Path, OffsetRange]]:
        """Every landed or half-written file of one topic partition."""
        found = []
        if not self.root.exists():
            return found
        prefix = f"{topic}+{partition}+"
        for path in self.root.rglob(f"*{prefix}*"):
            offsets = OffsetRange.from_name(path.name.removeprefix("."))
            if offsets is not None and offsets.topic == topic and offsets.partition == partition:
                found.append((path, offsets))
        return found

    def discard_uncommitted(self, topic: str, partition: int, committed: int) -> list[Path]:
        """Remove the files holding offsets at or after ``committed`` (and temporary files).

        Those messages were not committed, so the consumer reads them again and lands them
        anew: removing first means a replay never adds a second copy, whatever its batches.
        """
        removed = []
        for path, offsets in self.landed(topic, partition):
            if path.name.startswith(".") or offsets.first >= committed:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


def quarantine_record(
    offsets: OffsetRange,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    rule: str,
    reason: str,
) -> dict[str, Any]:
    """One refused message as stored in the quarantine file."""
    return {
        "topic": offsets.topic,
        "partition": offsets.partition,
        "offset": offset,
        "key": None if key is None else key.decode("utf-8", "replace"),
        "value": None if value is None else value.decode("utf-8", "replace"),
        "rule": rule,
        "reason": reason,
        "quarantined_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
