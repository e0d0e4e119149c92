"""One progress display per long step: simulated months, tuning trials, export phases,
monitoring statistics.

The display is a ``tqdm`` bar on standard error (``tqdm.auto``: a widget in Jupyter when
``ipywidgets`` is installed). By default it shows where someone watches — on a terminal and in
a Jupyter kernel — and stays out of logs, CI output and ``kedro run > file``. The
``CHURN_PROGRESS`` environment variable overrides that: ``1`` always, ``0`` never, ``auto``
the default.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PROGRESS_ENV = "CHURN_PROGRESS"
"""``auto`` (default: on a terminal or in Jupyter), ``1`` (always) or ``0`` (never)."""

_ON = frozenset({"1", "true", "on", "yes"})
_OFF = frozenset({"0", "false", "off", "no"})


class ProgressSettingError(ValueError):
    """``CHURN_PROGRESS`` holds something other than auto, 1 or 0."""


def _disable() -> bool | None:
    """``tqdm``'s ``disable``: ``None`` lets tqdm switch the bar off when stderr is no terminal."""
    setting = os.environ.get(PROGRESS_ENV, "").strip().lower() or "auto"
    if setting in _ON:
        return False
    if setting in _OFF:
        return True
    if setting != "auto":
        raise ProgressSettingError(
            f"{PROGRESS_ENV}={os.environ[PROGRESS_ENV]!r} is not a progress setting: "
            "use auto (on a terminal or in Jupyter), 1 (always) or 0 (never)"
        )
    if _in_jupyter_kernel():  # stderr is no terminal there, but someone watches
        return False
    return None


def _in_jupyter_kernel() -> bool:
    """Whether this process is a running Jupyter kernel (not merely one that imported it)."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    return kernelapp is not None and bool(kernelapp.IPKernelApp.initialized())


def progress(total: int | None, description: str, unit: str) -> Any:
    """A progress bar of ``total`` ``unit``s named ``description`` (a context manager).

    Raises:
        ProgressSettingError: ``CHURN_PROGRESS`` is not ``auto``, ``1`` or ``0``.
    """
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=_disable(),
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
    )
