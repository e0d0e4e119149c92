"""Two continuous-training runs at once: the second exits with a clear message (or waits)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from churn_mlops.orchestration.continuous_training import (
    LOCK_FILE,
    continuous_training,
    run_continuous_training,
)
from churn_mlops.run_lock import RunLockedError, exclusive_run

HOLD = textwrap.dedent(
    """
    import sys, time
    from churn_mlops.run_lock import exclusive_run

    with exclusive_run(sys.argv[1], purpose="continuous-training run"):
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
        open(sys.argv[1] + ".done", "w").close()  # the last thing done under the lock
    """
)


def _hold(lock: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_second_run_exits_naming_the_holder_and_touches_nothing(tmp_path: Path):
    holder = _hold(tmp_path / LOCK_FILE, 60)
    try:
        with pytest.raises(
            RunLockedError,
            match=rf"another continuous-training run is running \(pid {holder.pid} since",
        ):
            # The lock is taken before the project is even bootstrapped (tmp_path is none).
            run_continuous_training(tmp_path)
        result = CliRunner().invoke(continuous_training, ["--project-path", str(tmp_path)])
        assert result.exit_code == 1
        assert "another continuous-training run is running" in result.output
        assert str(tmp_path / LOCK_FILE) in result.output
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_run_gets_the_lock_when_the_holder_ends(tmp_path: Path):
    lock = tmp_path / "ct.lock"
    holder = _hold(lock, 1.0)
    with exclusive_run(lock, wait_s=60, purpose="continuous-training run"):
        assert Path(f"{lock}.done").exists()  # got the lock only after the holder's work
    holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path):
    lock = tmp_path / "ct.lock"
    holder = _hold(lock, 600)
    holder.kill()
    holder.wait()
    with exclusive_run(lock, purpose="continuous-training run"):
        assert lock.read_text().startswith("pid ")
