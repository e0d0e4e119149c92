"""Which source commit the running code comes from: git in a checkout, the image's label elsewhere.

The registry tags every model version with it (``git_commit``), the export writes it into the
bundle's manifest and the pipelines image is tagged with it. In a git checkout it is ``HEAD``
(``+dirty`` when tracked files changed); where there is no checkout — the pipelines image the
Kubernetes Jobs run — it is ``CHURN_SOURCE_COMMIT``, which the image sets from the commit it
was built from; otherwise ``unknown``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: Environment variable with the commit when the code runs outside a git checkout.
SOURCE_COMMIT_VARIABLE = "CHURN_SOURCE_COMMIT"
UNKNOWN = "unknown"


def _git(source_dir: Path | None, *args: str, timeout_s: float) -> str:
    where = ["-C", str(source_dir)] if source_dir is not None else []
    return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        ["git", *where, *args],  # noqa: S607 - git from PATH, like a user's shell
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout_s,
    ).stdout.strip()


def git_revision(source_dir: Path | None = None, *, timeout_s: float = 30.0) -> str:
    """The source commit of ``source_dir`` (default: the current directory).

    Returns:
        ``HEAD`` of the checkout, with ``+dirty`` when tracked files have uncommitted changes;
        without a checkout (or without git), ``$CHURN_SOURCE_COMMIT`` or ``unknown``.
    """
    try:
        head = _git(source_dir, "rev-parse", "HEAD", timeout_s=timeout_s)
        dirty = _git(
            source_dir, "status", "--porcelain", "--untracked-files=no", timeout_s=timeout_s
        )
    except (OSError, subprocess.SubprocessError):
        return os.environ.get(SOURCE_COMMIT_VARIABLE, "").strip() or UNKNOWN
    return f"{head}+dirty" if dirty else head
