"""The serving app as a real uvicorn process (``python -m churn_mlops.serving``) for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

READY_TIMEOUT_S = 180.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serving(
    settings: dict[str, str],
    log: Path,
    is_ready: Callable[[], bool],
    *,
    timeout_s: float = READY_TIMEOUT_S,
) -> subprocess.Popen[bytes]:
    """Start the app with ``settings`` (``CHURN_*`` variables, none inherited from the caller)
    and wait until ``is_ready()`` says so; its output goes to ``log``.

    Fails the test with the end of the log if the process exits first, or after ``timeout_s``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(settings)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "churn_mlops.serving"], env=env, stdout=out, stderr=out
        )
    deadline = time.time() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-3000:]}")
        try:
            if is_ready():
                return proc
        except httpx.TransportError:
            pass
        if time.time() > deadline:
            proc.kill()
            proc.wait(timeout=30)
            pytest.fail(f"server did not become ready in {timeout_s:.0f} s")
        time.sleep(0.3)
