"""docs/export.md and the container part of docs/handoff.md say what the code does.

Every serving setting is documented; the docker commands use options docker has; the
checksum one-liner really verifies a bundle; the pipelines named exist.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import textwrap
from pathlib import Path

import pytest

from churn_mlops.serving.settings import ServingSettings
from tests.conftest import PROJECT_ROOT
from tests.tools import tool

EXPORT_DOC = PROJECT_ROOT / "docs" / "export.md"
HANDOFF_DOC = PROJECT_ROOT / "docs" / "handoff.md"


def _blocks(path: Path, languages: str) -> list[str]:
    found = re.findall(rf"^( *)```(?:{languages})\n(.*?)^\1```", path.read_text(), re.S | re.M)
    return [textwrap.dedent(body) for _, body in found]


def _commands(path: Path, languages: str = "bash|sh") -> list[list[str]]:
    commands = []
    for block in _blocks(path, languages):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def _container_section() -> str:
    """The serving container's part of the handoff (the pipelines image has its own settings)."""
    text = HANDOFF_DOC.read_text()
    start = text.index("## Building the container")
    end = min(text.index(h, start) for h in ("### The pipelines image", "## What runs where"))
    return text[start:end]


def test_every_serving_setting_is_in_the_handoff_table():
    section = _container_section()
    documented = set(re.findall(r"`(CHURN_[A-Z_]+)`", section))
    expected = {f"CHURN_{name.upper()}" for name in ServingSettings.model_fields}
    assert expected - documented == set(), "settings missing from docs/handoff.md"
    assert documented - expected == set(), "docs/handoff.md documents settings that do not exist"


def test_image_defaults_in_the_table_match_the_dockerfile():
    from churn_mlops.release.serving_image import SERVING_DOCKERFILE
    from tests.release.test_serving_image import declared_args

    dockerfile = (PROJECT_ROOT / SERVING_DOCKERFILE).read_text()
    defaults = declared_args(dockerfile)
    section = _container_section()
    found = re.findall(r"(CHURN_[A-Z_]+)=(\S+)", dockerfile)
    assert len(found) >= 5
    for name, value in found:
        value = re.sub(r"\$\{([A-Z_]+)\}", lambda m: defaults[m.group(1)], value)
        assert f"| `{name}` | `{value}` |" in section, name


def _takes_value(usage: str, option: str) -> bool:
    """Whether `docker <cmd> --help` lists `option` with a value type (`-v, --volume list`)."""
    return bool(re.search(rf"(^|\s){re.escape(option)} [a-z]", usage, re.M))


@pytest.mark.parametrize("doc", [EXPORT_DOC, HANDOFF_DOC], ids=["export", "handoff"])
def test_docker_commands_use_existing_options(doc):
    docker = tool("docker", "apt: docker.io")
    for command in _commands(doc):
        if command[0] != "docker":
            continue
        usage = subprocess.run(
            [docker, command[1], "--help"], capture_output=True, text=True, timeout=30
        ).stdout
        tokens = iter(command[2:])
        for token in tokens:
            if token.startswith("$("):  # options read from a file: $(cat build-args.txt)
                while not token.endswith(")"):
                    token = next(tokens)
                continue
            if not token.startswith("-"):
                break  # the image (or build context): what follows is the container's command
            option = token.split("=")[0]
            assert re.search(rf"(^|\s){re.escape(option)}[\s,]", usage), (
                f"{doc.name}: docker {command[1]} has no option {token}"
            )
            if "=" not in token and _takes_value(usage, option):
                next(tokens, None)


def test_kedro_commands_name_registered_pipelines():
    pipelines = {p.name for p in (PROJECT_ROOT / "src/churn_mlops/pipelines").iterdir()}
    commands = [c for doc in (EXPORT_DOC, HANDOFF_DOC) for c in _commands(doc)]
    named = [
        c[c.index("--pipeline") + 1]
        for c in commands
        if c[:2] == ["kedro", "run"] and "--pipeline" in c
    ]
    assert "export" in named
    assert set(named) <= pipelines


def test_checksum_one_liner_verifies_a_bundle(tmp_path):
    codes = {
        doc.name: [c[2] for c in _commands(doc) if c[:2] == ["python3", "-c"]]
        for doc in (EXPORT_DOC, HANDOFF_DOC)
    }
    assert codes["export.md"] and codes["export.md"] == codes["handoff.md"]
    code = codes["export.md"][0]
    bundle = tmp_path / "churn_model-v1"
    (bundle / "model").mkdir(parents=True)
    (bundle / "model" / "model.onnx").write_bytes(b"model")
    files = {"model/model.onnx": {"sha256": hashlib.sha256(b"model").hexdigest(), "bytes": 5}}
    (bundle / "manifest.json").write_text(json.dumps({"files": files}))

    good = subprocess.run(["python3", "-c", code, str(bundle)], capture_output=True, text=True)
    assert (good.returncode, good.stdout.strip()) == (0, "ok")
    (bundle / "model" / "model.onnx").write_bytes(b"tampered")
    bad = subprocess.run(["python3", "-c", code, str(bundle)], capture_output=True, text=True)
    assert bad.returncode == 1 and "model/model.onnx" in bad.stdout
