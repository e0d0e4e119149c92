"""Run a documentation page's shell commands top to bottom, as a reader would.

A page's command lines come from :func:`tests.docs.doccheck.shell_lines` (the parsing the
reference checker uses). :class:`DocRunner` runs each in its own ``bash`` in a project folder
and keeps what a reader's shell keeps between lines: ``NAME=$(…)`` and ``export NAME=…``
assignments. A line can be

* run as written (exit status 0 or the test fails, naming the line and its output);
* a *server* (the app, ``mlflow ui``, kedro-viz): started in the background, waited for on its
  readiness URL, and stopped by the id of the process the runner started: at once for a server
  that is only looked at, else when the next server starts or the page ends. The page's ports
  move to free ones in :meth:`Server.command` and :meth:`DocRunner.with_ports`, the one place
  that rewrites them;
* listed by the test as not run, with the reason (a test also checks every listed line is
  still on the page, so the list cannot go stale).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a quoted string's new lines kept)."""
    return re.sub(r"(^|\s+)#\s[^\n]*$", "", line).strip()


def without_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` and with its white space collapsed: the form
    in which a test names a line."""
    return " ".join(strip_comment(line).split())


def without_substitutions(line: str) -> str:
    """``line`` with every ``$(…)`` (nested parentheses included) replaced by ``X``."""
    out, depth, index = [], 0, 0
    while index < len(line):
        if line.startswith("$(", index):
            depth += 1
            index += 2
            continue
        char = line[index]
        if depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                out.append("X")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def assigned_names(line: str) -> list[str]:
    """Names a line only assigns (``A=1``, ``export A=$(…) B=2``); empty for anything else."""
    try:
        words = shlex.split(without_substitutions(without_comment(line)))
    except ValueError:
        return []
    words = words[1:] if words[:1] == ["export"] else words
    names = [match.group(1) for word in words if (match := ASSIGNMENT.match(word))]
    return names if words and len(names) == len(words) else []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the dynamic range
    (kedro-viz refuses ports above 49151)."""
    for port in random.sample(range(20000, 49152), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 between 20000 and 49151")


def json_keys(value: Any) -> set[str]:
    """Every key of a JSON document, at any depth."""
    if isinstance(value, dict):
        return set(value).union(*(json_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(json_keys(v) for v in value))
    return set()


@dataclass(frozen=True)
class Server:
    """A documented command that starts a server on a fixed port.

    Attributes:
        pattern: Regular expression matched against the command line (comment removed).
        port: The port the page documents.
        ready_path: Path that answers 200 once the server is up.
        add_port: How the command is told another port: ``(line, port) -> line``.
        tls_marker: Text of a command line that makes the server speak HTTPS only (its
            readiness is then checked over HTTPS, without verifying the certificate).
        keeps_running: Whether later lines talk to the server (the app: it runs until the
            next server starts); a server only to look at in a browser (the MLflow UI,
            kedro-viz) is stopped once it answers.
    """

    pattern: str
    port: int
    ready_path: str
    add_port: Callable[[str, int], str]
    tls_marker: str = ""
    keeps_running: bool = True

    def matches(self, line: str) -> bool:
        return re.search(self.pattern, without_comment(line)) is not None

    def command(self, line: str, port: int) -> str:
        return self.add_port(strip_comment(line), port)


@dataclass
class Step:
    """What happened to one documented line."""

    line: str
    kind: str  # "run", "server", "assignment", "not run"
    seconds: float = 0.0
    output: str = ""


@dataclass
class DocRunner:
    """Runs command lines in ``cwd`` with ``env``, keeping a reader's shell variables."""

    cwd: Path
    env: dict[str, str]
    servers: tuple[Server, ...]
    log_dir: Path
    timeout_s: float = 600
    ports: dict[int, int] = field(default_factory=dict)
    running: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def with_ports(self, line: str) -> str:
        """``line`` with every documented server port on 127.0.0.1 moved to its free port."""
        for documented, actual in self.ports.items():
            line = line.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{actual}")
        return line

    def run(self, line: str) -> Step:
        """Run one documented line; raise AssertionError naming it when it fails."""
        started = time.perf_counter()
        server = next((s for s in self.servers if s.matches(line)), None)
        if server is not None:
            step = Step(line, "server", output=self._start(server, line))
            if not server.keeps_running:
                self.stop_all()
        elif names := assigned_names(line):
            step = self._assign(names, line)
        else:
            step = Step(line, "run", output=self._bash(self.with_ports(line)))
        step.seconds = time.perf_counter() - started
        self.steps.append(step)
        return step

    def skip(self, line: str, reason: str) -> None:
        """Record a line the test does not run, with the reason."""
        self.steps.append(Step(line, "not run", output=reason))

    def _bash(self, line: str) -> str:
        proc = subprocess.run(
            ["bash", "-c", line],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"documented command failed (exit {proc.returncode}): {line}\n"
                f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def _assign(self, names: list[str], line: str) -> Step:
        """``NAME=…`` / ``export NAME=…``: evaluate as bash would and keep it for later lines."""
        printed = " ".join(f'"${name}"' for name in names)
        values = self._bash(f"{self.with_ports(line)}\nprintf '%s\\0' {printed}").split("\0")
        empty = [name for name, value in zip(names, values, strict=False) if not value]
        assert not empty, f"documented assignment left {empty} empty: {line}"
        self.env.update(zip(names, values, strict=False))
        return Step(line, "assignment", output=" ".join(values))

    def _start(self, server: Server, line: str) -> str:
        self.stop_all()  # one server at a time: the page's "from another shell" is the next lines
        port = self.ports.setdefault(server.port, free_port())
        command = server.command(self.with_ports(line), port)
        log = self.log_dir / f"server-{len(self.steps)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[server.port] = proc
        tls = bool(server.tls_marker) and server.tls_marker in command
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}{server.ready_path}"
        context = ssl._create_unverified_context() if tls else None  # a self-signed test cert
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(
                    f"server exited ({proc.returncode}): {command}\n{log.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5, context=context) as answer:
                    if answer.status == 200:
                        return command
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"server not ready at {url}: {command}\n{log.read_text()[-3000:]}")

    def stop(self, documented_port: int) -> None:
        """Stop the server this runner started for ``documented_port`` (its process group)."""
        proc = self.running.pop(documented_port, None)
        if proc is None or proc.poll() is not None:
            return
        # The process group of the process this runner started: a server's own children
        # (mlflow ui's uvicorn, make's kedro viz) stop with it.
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _group_alive(proc.pid):
            proc.poll()  # reap the started process, so a finished group reads as gone
            time.sleep(0.2)
        if _group_alive(proc.pid):  # `mlflow ui` can hang in its SIGTERM handler
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for port in list(self.running):
            self.stop(port)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def reader_env(venv_bin: Path, unset: tuple[str, ...], extra: Mapping[str, str]) -> dict[str, str]:
    """A reader's environment: the venv's ``bin/`` first on PATH (what ``source
    .venv/bin/activate`` does), without the test-only variables ``unset``, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    return {**env, **extra}


def summary(steps: list[Step]) -> Iterator[str]:
    """One line per step: seconds, kind, command (for the test's output and docstring)."""
    for step in steps:
        yield f"{step.seconds:7.1f} s  {step.kind:10}  {without_comment(step.line)[:100]}"


def parse_json(output: str, line: str) -> Any:
    """The JSON a documented command printed last (after its log lines, if any: a document
    starting at the beginning of a line); AssertionError naming the line otherwise."""
    start = output.rfind("\n{") + 1
    try:
        return json.loads(output[start:])
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{line}: printed no JSON ({exc}):\n{output[-2000:]}") from exc
