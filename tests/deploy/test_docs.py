"""Every command in docs/handoff.md and docs/runbooks/ exists, with the options it is given.

The shell blocks of the ops docs are parsed and each command is checked against the real tool
without touching a cluster: kubectl parses the full command line (``--help`` appended, so an
unknown subcommand or flag fails), Kedro pipeline names and project commands are looked up in
the project, ``python -m churn_mlops.release.deploy`` really renders (into a temporary folder), the
switch scripts are checked against their usage text, and every repository path named exists.
PromQL blocks may only read the app's metrics (or the few cluster metrics named below).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.deploy.conftest import PROJECT_ROOT
from tests.deploy.promql import contract_metrics, metric_names, sample_names
from tests.tools import tool

DOCS = [
    PROJECT_ROOT / "docs" / "handoff.md",
    *sorted((PROJECT_ROOT / "docs" / "runbooks").glob("*.md")),
]
REQUIRED_RUNBOOKS = {
    "deploy",
    "canary",
    "promote",
    "blue_green",
    "rollback",
    "scale",
    "rotate_secrets",
    "latency_regression",
    "training_serving_skew",
}
# Tools outside the project whose commands are not checked beyond their name.
PLAIN_TOOLS = {"curl", "openssl", "git", "ls", "head"}
# Metrics of the cluster (cAdvisor, ingress-nginx) a runbook may point at.
CLUSTER_METRICS = {
    "container_cpu_cfs_throttled_periods_total",
    "nginx_ingress_controller_request_duration_seconds",
}
# Pipelines the docs name that another issue is still writing: checked like the others as soon
# as they exist, an expected failure until then.
PENDING_PIPELINES: dict[str, str] = {}  # pipeline name -> the issue that will add it
# Folders of the repository a command may name (dist/k8s* is a rendered copy of deploy/k8s).
REPO_PREFIXES = ("deploy/", "docs/", "conf/", "benchmarks/", "src/", "tests/")


def blocks(path: Path, language: str) -> list[str]:
    """Fenced blocks of one language, also those indented inside list items."""
    found = re.findall(rf"^( *)```{language}\n(.*?)^\1```", path.read_text(), flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in found]


def commands(path: Path) -> list[list[str]]:
    """Each simple command of the bash blocks, as argument lists (pipes and && split)."""
    found = []
    for block in blocks(path, "bash"):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            # `NAME=$(command ...)`: check the command inside the substitution.
            line = re.sub(r"^[A-Z_]+=\$\((.*)\)$", r"\1", line)
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
            lexer.whitespace_split = True
            current: list[str] = []
            for token in lexer:
                if token in {"|", "&&", ";", "||"}:
                    found.append(current)
                    current = []
                else:
                    current.append(token)
            found.append(current)
    return [
        [token for token in cmd if not re.fullmatch(r"[A-Z_]+=\S*", token)] for cmd in found if cmd
    ]


ALL_COMMANDS = [(doc, cmd) for doc in DOCS for cmd in commands(doc)]


def test_every_runbook_exists_and_has_commands() -> None:
    names = {doc.stem for doc in DOCS if doc.parent.name == "runbooks"}
    assert REQUIRED_RUNBOOKS <= names
    for doc in DOCS:
        assert commands(doc), f"{doc.name} has no shell commands"


def repo_path(token: str) -> Path | None:
    """The repository file a token names, or None if it names none."""
    token = token.split("=", 1)[-1]
    mapped = re.sub(r"^dist/k8s(-v\d+)?(?=/|$)", "deploy/k8s", token)
    if mapped.startswith(REPO_PREFIXES) and not token.startswith("dist/k8s") or mapped != token:
        return PROJECT_ROOT / mapped
    return None


def check_paths(cmd: list[str]) -> None:
    for token in cmd:
        path = repo_path(token)
        if path is not None:
            assert path.exists(), f"{token} does not exist (in: {shlex.join(cmd)})"


def check_kubectl(cmd: list[str]) -> None:
    kubectl = tool("kubectl")
    for flag_index, token in enumerate(cmd):
        if token == "-k":
            folder = repo_path(cmd[flag_index + 1])
            assert folder is not None and (folder / "kustomization.yaml").is_file(), cmd
    proc = subprocess.run([kubectl, *cmd[1:], "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"{shlex.join(cmd)}: {proc.stderr.strip()}"


def usage_options(script: Path) -> set[str]:
    header = script.read_text().split("set -euo pipefail")[0]
    return set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", header))


def check_script(cmd: list[str]) -> None:
    script = PROJECT_ROOT / cmd[0]
    assert script.is_file() and os.access(script, os.X_OK), f"{cmd[0]} is not an executable"
    allowed = usage_options(script)
    for token in cmd[1:]:
        if token.startswith("-"):
            assert token in allowed, f"{cmd[0]} has no option {token}"
    words = [t for t in cmd[1:] if not t.startswith("-")]
    if script.name == "switch.sh":
        assert {"status", "blue", "green", "back"} & set(words), cmd
    if script.name == "set-weight.sh":
        assert any(w == "status" or w.isdigit() for w in words), cmd


def check_kedro(cmd: list[str]) -> None:
    import click

    if cmd[1] == "run":
        option = "--pipelines" if "--pipelines" in cmd else "--pipeline"
        names = cmd[cmd.index(option) + 1].split(",")
        registered = {
            p.name
            for p in (PROJECT_ROOT / "src" / "churn_mlops" / "pipelines").iterdir()
            if (p / "pipeline.py").is_file()
        }
        for pipeline in names:
            if pipeline in PENDING_PIPELINES and pipeline not in registered:
                pytest.xfail(
                    f"pipeline {pipeline!r} is not written yet ({PENDING_PIPELINES[pipeline]})"
                )
            assert pipeline in registered, f"no pipeline {pipeline!r} (have {sorted(registered)})"
        if "--params" in cmd:
            key = cmd[cmd.index("--params") + 1].split("=")[0]
            check_parameter(key)
        return
    from churn_mlops.cli import cli

    command: click.Command = cli
    words = [t for t in cmd[1:] if not t.startswith("-")]
    for word in words:
        if isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
    assert command is not cli, f"no project command in {shlex.join(cmd)}"
    options = {opt for param in command.params for opt in param.opts}
    for token in cmd[1:]:
        if token.startswith("-"):
            assert token.split("=")[0] in options, f"{shlex.join(cmd)}: no option {token}"


def check_parameter(key: str) -> None:
    import yaml

    top = key.split(".")[0]
    node = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / f"parameters_{top}.yml").read_text())
    for part in key.split("."):
        assert part in node, f"parameter {key} does not exist"
        node = node[part]


def check_python(cmd: list[str], tmp_path: Path) -> None:
    if cmd[1] == "-m" and cmd[2] == "churn_mlops.release.deploy":
        args = list(cmd[3:])
        args[args.index("--out") + 1] = str(tmp_path / "k8s")
        proc = subprocess.run(
            [sys.executable, "-m", "churn_mlops.release.deploy", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
    elif cmd[1] == "-m" and cmd[2] == "churn_mlops.orchestration.continuous_training":
        from churn_mlops.orchestration.continuous_training import continuous_training

        options = {opt for param in continuous_training.params for opt in param.opts}
        for token in cmd[3:]:
            if token.startswith("-"):
                assert token in options, f"continuous_training has no option {token}"
        if "--params" in cmd:
            check_parameter(cmd[cmd.index("--params") + 1].split("=")[0])
    elif cmd[1] == "deploy/grafana/generate.py":
        proc = subprocess.run(
            [sys.executable, cmd[1], "--check"], cwd=PROJECT_ROOT, capture_output=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
    else:
        pytest.fail(f"unchecked python command: {shlex.join(cmd)}")


def check_promtool(cmd: list[str]) -> None:
    assert cmd[1:3] in (["check", "config"], ["check", "rules"], ["test", "rules"]), cmd
    for token in cmd[3:]:
        assert (PROJECT_ROOT / token).is_file(), token


@pytest.mark.parametrize(
    ("doc", "cmd"),
    ALL_COMMANDS,
    ids=[f"{doc.stem}:{shlex.join(cmd)[:60]}" for doc, cmd in ALL_COMMANDS],
)
def test_command_exists(doc: Path, cmd: list[str], tmp_path: Path) -> None:
    check_paths(cmd)
    program = cmd[0]
    if program == "kubectl":
        check_kubectl(cmd)
    elif program.startswith("deploy/") and program.endswith(".sh"):
        check_script(cmd)
    elif program == "kedro":
        check_kedro(cmd)
    elif program == "python":
        check_python(cmd, tmp_path)
    elif program == "promtool":
        check_promtool(cmd)
    elif program in {"grep", "less"} and len(cmd) >= 1:
        pass  # only ever the right-hand side of a pipe
    else:
        assert program in PLAIN_TOOLS, f"{doc.name}: unknown command {shlex.join(cmd)}"


def test_promql_in_the_docs_reads_real_metrics() -> None:
    known = sample_names(contract_metrics()) | CLUSTER_METRICS
    for doc in DOCS:
        for block in blocks(doc, "promql"):
            for expr in block.strip().splitlines():
                names = metric_names(expr)
                assert names and names <= known, f"{doc.name}: {names - known} in {expr}"


def test_links_between_docs_resolve() -> None:
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", doc.read_text()):
            if target.startswith("http"):
                continue
            assert (doc.parent / target).is_file(), f"{doc.name} links to missing {target}"
