"""The runner of documented commands (tests/docs/docrun.py) on small real commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.docs.docrun import DocRunner, Server, assigned_names, reader_env, without_comment

HTTP_SERVER = Server(r"python -m http.server$", 8000, "/", lambda line, port: f"{line} {port}")


def _runner(tmp_path: Path) -> DocRunner:
    env = reader_env(Path(sys.executable).parent, ("PYTEST_CURRENT_TEST",), {})
    return DocRunner(cwd=tmp_path, env=env, servers=(HTTP_SERVER,), log_dir=tmp_path, timeout_s=60)


def test_lines_that_only_assign_are_told_apart() -> None:
    assert assigned_names("BUNDLE=$(ls -td dist/m-v*/ | head -1)   # the newest") == ["BUNDLE"]
    assert assigned_names('export A=$(python -c "print(max(1, 2))") B=2') == ["A", "B"]
    assert assigned_names("CHURN_PORT=1 python -m churn_mlops.serving") == []
    assert without_comment("kedro run   # all of it") == "kedro run"


def test_variables_live_on_between_lines_and_a_failure_names_its_line(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    runner.run('NAME=$(printf "%s" "doc page")')
    runner.run("export GREETING=$(python -c \"\nprint('hi')\")")
    assert runner.run('printf "%s/%s" "$NAME" "$GREETING" > out.txt').kind == "run"
    assert (tmp_path / "out.txt").read_text() == "doc page/hi"
    with pytest.raises(AssertionError, match="exit 3.*exit 3"):
        runner.run("echo before && exit 3")
    with pytest.raises(AssertionError, match=r"left \['EMPTY'\] empty"):
        runner.run("export EMPTY=$(true)")


def test_a_server_gets_a_free_port_and_is_stopped_by_the_runner(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    (tmp_path / "page.txt").write_text("served", encoding="utf-8")
    step = runner.run("python -m http.server")
    port = runner.ports[8000]
    assert step.kind == "server" and step.output.endswith(f" {port}")
    assert runner.run("curl -s http://127.0.0.1:8000/page.txt").output == "served"
    process = runner.running[8000]
    runner.stop_all()
    assert process.returncode is not None and not runner.running
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
