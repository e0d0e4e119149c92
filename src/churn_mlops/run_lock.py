"""An exclusive, crash-safe lock file (``fcntl.flock``) so that only one process runs a step.

Continuous training holds it for its whole run, so two runs started at once never write the
model registry both: the second waits up to ``wait_s`` seconds, then exits with a message
naming the holder. The operating system drops the lock when its holder ends, even on SIGKILL,
so a crashed run never leaves a stale lock behind. ``flock`` locks are per host (and not
reliable on NFS); runs on several machines need a scheduler that forbids overlap (the
Kubernetes CronJob's ``concurrencyPolicy: Forbid``), see docs/monitoring.md.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

#: How often a waiting process retries the lock.
POLL_INTERVAL_S = 0.2


class RunLockedError(RuntimeError):
    """Another process holds the lock; the message names the lock file and the holder."""


@contextmanager
def exclusive_run(lock_path: Path | str, *, wait_s: float = 0.0, purpose: str) -> Iterator[None]:
    """Hold ``lock_path`` exclusively for the duration of the ``with`` block.

    Args:
        lock_path: The lock file (created if missing; its content names the holder).
        wait_s: How long to wait for another holder to finish (0: fail at once).
        purpose: What the lock protects, for the error message (``continuous training``).

    Raises:
        RunLockedError: The lock is still held after ``wait_s`` seconds.
    """
    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    raise RunLockedError(
                        f"another {purpose} is running ({holder}; lock file {path}); waited "
                        f"{wait_s:g} s. Retry when it has finished, or pass a longer wait"
                    ) from None
                time.sleep(POLL_INTERVAL_S)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {started}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
