"""The parity gate: the bundle's app, installed from the bundle alone, answers like evaluation.

:func:`check_bundle_parity` creates a fresh virtual environment, installs the bundle's
``requirements.txt`` from its ``wheelhouse/`` with ``--no-index --require-hashes`` (exactly as
the ``Dockerfile`` does) and the project wheel with ``--no-deps``, checks that
``churn_mlops`` is imported from that environment and not from a checkout, starts
``python -I -m churn_mlops.serving`` in an empty working folder with a clean environment on a
free 127.0.0.1 port, waits for ``/health/ready``, posts the golden sample to ``/v1/predict``
and compares the probabilities with the evaluation pipeline's. Any difference above the
tolerance, any install or start-up failure, raises :class:`ParityError`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.contracts.artifacts import EXPECTED_COLUMN
from churn_mlops.release.errors import ParityError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParityResult:
    """Outcome of a passed parity gate (a failed one raises)."""

    rows: int
    max_abs_diff: float
    tolerance: float
    served_model_version: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the manifest."""
        return {**asdict(self), "passed": True}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return "<no log>"


def _run(command: Sequence[str], *, what: str, timeout: float, log: Path, **kwargs: Any) -> str:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            list(command), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired as exc:
        raise ParityError(f"parity gate: {what} did not finish within {timeout:.0f} s") from exc
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(command)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-3000:]
        raise ParityError(f"parity gate: {what} failed (exit code {proc.returncode}):\n{tail}")
    return proc.stdout


def golden_rows(golden: pd.DataFrame, feature_names: Sequence[str]) -> list[dict[str, Any]]:
    """Request rows of the golden sample: plain Python values, missing values as ``null``.

    ``tolist()`` turns numpy scalars into Python ``int``/``float`` whose JSON form
    (``repr``) round-trips exactly, so the app receives the very numbers evaluation scored.
    """
    columns = {}
    for name in feature_names:
        values = golden[name].astype(object).where(golden[name].notna(), None).tolist()
        columns[name] = [
            float(v) if isinstance(v, float) and math.isfinite(v) else v for v in values
        ]
    return [{name: columns[name][i] for name in feature_names} for i in range(len(golden))]


def _request(url: str, *, body: bytes | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        url,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"content-type": "application/json"} if body is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _install(venv: Path, bundle_dir: Path, work_dir: Path, timeout_s: float, log: Path) -> Path:
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        what="creating the virtual environment",
        timeout=120,
        log=log,
    )
    wheelhouse = bundle_dir / "wheelhouse"
    # No pip configuration at all (no extra find-links, indexes or constraints of this
    # machine): only the wheelhouse can satisfy the requirements. No byte-compiling: the
    # gate imports the app once, so compiling every module of scipy would only cost time.
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "--disable-pip-version-check",
        "install",
        "--no-index",
        "--no-cache-dir",
        "--no-compile",
    ]
    env = {**_clean_env(work_dir), "PIP_CONFIG_FILE": os.devnull}
    _run(
        [
            *pip,
            "--find-links",
            str(wheelhouse),
            "--require-hashes",
            "-r",
            str(bundle_dir / "requirements.txt"),
        ],
        what="installing requirements.txt from the wheelhouse (--no-index --require-hashes)",
        timeout=timeout_s,
        log=log,
        cwd=work_dir,
        env=env,
    )
    projects = sorted(wheelhouse.glob("churn_mlops-*.whl"))
    if len(projects) != 1:
        raise ParityError(f"parity gate: {wheelhouse} holds {len(projects)} churn_mlops wheels")
    _run(
        [*pip, "--no-deps", str(projects[0])],
        what="installing the project wheel",
        timeout=timeout_s,
        log=log,
        cwd=work_dir,
        env=env,
    )
    location = _run(
        [
            str(python),
            "-I",
            "-c",
            "import churn_mlops.serving, pathlib; "
            "print(pathlib.Path(churn_mlops.serving.__file__).resolve())",
        ],
        what="importing churn_mlops.serving in the new environment",
        timeout=120,
        log=log,
        cwd=work_dir,
        env=_clean_env(work_dir),
    ).strip()
    if not Path(location).is_relative_to(venv.resolve()):
        raise ParityError(
            f"parity gate: churn_mlops.serving was imported from {location}, not from the new"
            f" environment {venv}; the bundle must run without the project source"
        )
    return python


def _clean_env(work_dir: Path) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
    return {**keep, "HOME": str(work_dir), "PYTHONNOUSERSITE": "1"}


def _wait_ready(
    base: Path | str, server: subprocess.Popen[bytes], timeout_s: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ParityError(
                f"parity gate: the bundle's app exited with code {server.returncode} before it"
                f" was ready:\n{_tail(log)}"
            )
        try:
            status, _ = _request(f"{base}/health/ready", timeout=2.0)
        except OSError:
            status = 0
        if status == 200:
            return
        time.sleep(0.3)
    raise ParityError(
        f"parity gate: the bundle's app was not ready within {timeout_s:.0f} s:\n{_tail(log)}"
    )


def _score(base: str, rows: list[dict[str, Any]], chunk: int) -> tuple[np.ndarray, set[str]]:
    probabilities: list[float] = []
    versions: set[str] = set()
    for start in range(0, len(rows), chunk):
        body = json.dumps({"rows": rows[start : start + chunk]}, allow_nan=False).encode()
        status, content = _request(f"{base}/v1/predict", body=body)
        if status != 200:
            raise ParityError(
                f"parity gate: /v1/predict answered {status} for golden rows {start}.."
                f"{start + chunk - 1}: {content[:2000].decode(errors='replace')}"
            )
        answer = json.loads(content)
        versions.add(str(answer.get("model_version")))
        probabilities.extend(float(p["probability"]) for p in answer["predictions"])
    return np.asarray(probabilities, dtype=float), versions


def _app_env(cwd: Path, bundle_dir: Path, port: int, request_rows: int) -> dict[str, str]:
    """The app's whole environment: the bundle's model, this port, no auth, log or docs."""
    return {
        **_clean_env(cwd),
        "CHURN_MODEL_DIR": str(bundle_dir.resolve()),
        "CHURN_HOST": "127.0.0.1",
        "CHURN_PORT": str(port),
        "CHURN_AUTH_ENABLED": "false",
        "CHURN_PREDICTION_LOG_ENABLED": "false",
        "CHURN_DOCS_ENABLED": "false",
        "CHURN_MAX_PREDICT_ROWS": str(max(request_rows, 1)),
        "CHURN_MAX_EXPLAIN_ROWS": "1",
    }


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate the app, killing it if it has not exited within 30 s."""
    stopping = time.monotonic()
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)
    logger.debug("parity gate: app stopped in %.1f s", time.monotonic() - stopping)


def _serve_and_score(
    python: Path,
    cwd: Path,
    env: dict[str, str],
    rows: list[dict[str, Any]],
    *,
    request_rows: int,
    startup_timeout_s: float,
    log: Path,
) -> tuple[np.ndarray, set[str]]:
    """Start the app on ``CHURN_PORT``, score ``rows`` once it is ready, always stop it."""
    base = f"http://127.0.0.1:{env['CHURN_PORT']}"
    with log.open("ab") as out:
        server = subprocess.Popen(  # noqa: S603
            [str(python), "-I", "-m", "churn_mlops.serving"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(base, server, startup_timeout_s, log)
        return _score(base, rows, request_rows)
    finally:
        _stop(server)


def _served_gaps(
    served: np.ndarray, expected: np.ndarray, versions: set[str], model_version: str
) -> np.ndarray:
    """Absolute gaps per golden row (``inf`` where not finite), after checking version, size."""
    if versions != {str(model_version)}:
        raise ParityError(
            f"parity gate: the app reported model version(s) {sorted(versions)}, expected"
            f" {model_version!r}"
        )
    if served.shape != expected.shape:
        raise ParityError(
            f"parity gate: the app returned {served.size} probabilities for {expected.size}"
            " golden rows"
        )
    gaps = np.abs(served - expected)
    gaps[~np.isfinite(gaps)] = np.inf
    return gaps


def check_bundle_parity(
    bundle_dir: Path,
    golden: pd.DataFrame,
    *,
    feature_names: Sequence[str],
    model_version: str,
    tolerance: float,
    work_dir: Path,
    request_rows: int = 100,
    install_timeout_s: float = 600.0,
    startup_timeout_s: float = 180.0,
) -> ParityResult:
    """Install the bundle alone, start its app and compare its answers with the golden sample.

    Args:
        bundle_dir: The (staged) bundle: ``requirements.txt``, ``wheelhouse/`` and the model
            files the app loads.
        golden: Feature columns plus :data:`EXPECTED_COLUMN`.
        feature_names: The model's features, in metadata order.
        model_version: The version the app must report.
        tolerance: Largest allowed absolute probability difference.
        work_dir: Empty scratch folder (virtual environment, app log, working directory).
        request_rows: Rows per ``/v1/predict`` request.
        install_timeout_s: Limit for each ``pip install``.
        startup_timeout_s: Limit for the app to become ready.

    Raises:
        ParityError: installing, starting or querying the app fails, or a probability
            differs by more than ``tolerance`` (the message names the rows).
    """
    log = work_dir / "parity.log"
    cwd = work_dir / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    python = _install(work_dir / "venv", bundle_dir, cwd, install_timeout_s, log)
    installed = time.monotonic()
    served, versions = _serve_and_score(
        python,
        cwd,
        _app_env(cwd, bundle_dir, _free_port(), request_rows),
        golden_rows(golden, feature_names),
        request_rows=request_rows,
        startup_timeout_s=startup_timeout_s,
        log=log,
    )
    expected = golden[EXPECTED_COLUMN].to_numpy(dtype=float)
    gaps = _served_gaps(served, expected, versions, model_version)
    worst = int(np.argmax(gaps)) if gaps.size else 0
    max_gap = float(gaps.max()) if gaps.size else 0.0
    logger.info(
        "parity gate: %d golden rows, largest gap %.3g (tolerance %.1g); install %.0f s,"
        " start and score %.0f s",
        len(gaps),
        max_gap,
        tolerance,
        installed - started,
        time.monotonic() - installed,
    )
    if not max_gap <= tolerance:
        bad = int(np.sum(gaps > tolerance))
        raise ParityError(
            f"parity gate failed: the bundle's app differs from the evaluation pipeline by up"
            f" to {max_gap:.3g} (tolerance {tolerance:g}) on {bad} of {len(gaps)} golden rows;"
            f" worst is golden row {worst}: evaluation {expected[worst]!r}, served"
            f" {served[worst]!r}"
        )
    return ParityResult(
        rows=len(gaps),
        max_abs_diff=max_gap,
        tolerance=tolerance,
        served_model_version=str(model_version),
    )
