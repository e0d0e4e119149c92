"""The commands of docs/notebook_workflow.md that tests/docs does not check: nbstripout
options, pytest paths, the sandbox module, copied folders and make targets.

``kedro`` subcommands, options and pipelines on every docs page are checked by tests/docs."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "notebook_workflow.md"
VENV_BIN = Path(sys.executable).parent


def documented_commands() -> list[list[str]]:
    """Each command line of the page's ``bash`` blocks, split, env assignments and comments
    dropped, ``cd … &&`` prefixes removed."""
    text = DOC.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line:
                continue
            line = line.split("&&")[-1].strip()
            words = [w for w in shlex.split(line) if not re.match(r"^[A-Z_]+=", w)]
            commands.append(words)
    return commands


def test_the_page_has_commands() -> None:
    tools = {Path(words[0]).name for words in documented_commands()}
    assert {"kedro", "nbstripout", "pytest", "make"} <= tools


@pytest.mark.slow
def test_documented_other_commands_exist() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    for words in documented_commands():
        tool = Path(words[0]).name
        if tool == "make":
            assert re.search(rf"^{re.escape(words[1])}:", makefile, re.MULTILINE), words
        elif tool == "nbstripout":
            proc = subprocess.run(
                [str(VENV_BIN / "nbstripout"), "--help"], capture_output=True, text=True
            )
            options = [w for w in words if w.startswith("--")]
            assert proc.returncode == 0 and all(o in proc.stdout for o in options), words
        elif tool == "pytest":
            for argument in words[1:]:
                if not argument.startswith("-") and "/" in argument:
                    assert (PROJECT_ROOT / argument).exists(), argument
        elif tool == "python":
            assert words[1] == "-m" and importlib.util.find_spec(words[2]), words
        elif tool == "cp":
            assert (PROJECT_ROOT / words[-2]).exists(), words
        elif tool != "kedro":
            pytest.fail(f"unchecked command in {DOC.name}: {' '.join(words)}")
