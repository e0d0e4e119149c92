"""Check the references in Markdown documentation against the real project.

A document is checked for:

* relative links (and images) that point at files which do not exist, or at a ``#heading``
  that the target page does not have;
* shell commands — in fenced ``bash``/``sh``/``shell``/``console`` blocks and in inline code
  spans — that name something the project does not have: a ``kedro`` subcommand or option,
  a pipeline after ``--pipeline``/``--pipelines``, a parameter key after ``--params``, a
  ``make`` target, a ``python -m`` module (or an option of its click command);
* repository paths in inline code (``src/…``, ``conf/…``, ``deploy/…``, …) and in shell
  commands that do not exist.

The project facts (registered pipelines, the ``kedro`` command tree, Makefile targets,
parameters) are gathered once by :func:`load_facts`; :func:`check_markdown` is a pure function
of a document's text and those facts, so a unit test can feed it a bad snippet.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
import textwrap
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
# Folders of the repository a document may name in backticks; a path under one of them must
# exist. data/ and dist/ are outputs, so they are not checked.
REPO_PREFIXES = (
    "src/",
    "conf/",
    "deploy/",
    "benchmarks/",
    "notebooks/",
    "tests/",
    "docs/",
    ".ci/",
)
# Characters that mark a token as a placeholder (`conf/<env>/`, `kedro run --pipeline …`).
PLACEHOLDER = re.compile(r"[<>{}*…]|\.\.\.|\b[A-Z][A-Z_]{1,}\b")
FENCE = re.compile(r"^( *)(```|~~~)[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1\2[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
OPERATORS = {"|", "||", "&&", ";", "&"}
# Commands whose path arguments may be files they are about to create.
CREATES_FILES = {"mkdir", "touch", "tee", "cp", "mv", "rm", "ln", "rsync", "install", "echo", "cat"}


@dataclass(frozen=True)
class Facts:
    """What the project really has, as the documentation may name it."""

    root: Path
    pipelines: frozenset[str]
    make_targets: frozenset[str]
    kedro_cli: click.Command
    parameters: dict[str, Any]
    env_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Paths the documentation tells the user to create (an example environment, say).
    user_created: tuple[str, ...] = ()


# ------------------------------------------------------------------------------ project facts


def make_targets(makefile: Path) -> frozenset[str]:
    """Targets defined in a Makefile (rules, not variable assignments)."""
    targets = set()
    for line in makefile.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?!=)", line)
        if match and not line.startswith((".PHONY", "\t")):
            targets.update(match.group(1).split())
    return frozenset(targets)


def load_parameters(conf_dir: Path) -> dict[str, Any]:
    """The parameters of one configuration folder, merged at the top level."""
    merged: dict[str, Any] = {}
    for path in sorted(conf_dir.glob("parameters*.yml")) + sorted(
        conf_dir.glob("parameters*/**/*.yml")
    ):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def load_facts(root: Path, *, user_created: tuple[str, ...] = ()) -> Facts:
    """Bootstrap the project at ``root`` and collect its pipelines, commands and parameters.

    ``user_created`` lists path prefixes that the documentation asks the user to create; they
    are not required to exist.
    """
    from kedro.framework.cli.cli import KedroCLI
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(root)
    from churn_mlops.pipeline_registry import register_pipelines

    pipelines = frozenset(register_pipelines())
    environments = {
        path.name: load_parameters(path)
        for path in (root / "conf").iterdir()
        if path.is_dir() and path.name != "base"
    }
    return Facts(
        root=root,
        pipelines=pipelines,
        make_targets=make_targets(root / "Makefile"),
        kedro_cli=KedroCLI(project_path=root),
        parameters=load_parameters(root / "conf" / "base"),
        env_parameters=environments,
        user_created=user_created,
    )


# ------------------------------------------------------------------------------ parsing Markdown


def strip_fences(text: str) -> str:
    """``text`` with every fenced code block blanked out (line count kept)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def fenced_blocks(text: str, languages: tuple[str, ...] = SHELL_LANGUAGES) -> list[tuple[str, str]]:
    """``(language, body)`` of the fenced blocks in one of ``languages`` (also in lists)."""
    return [
        (m.group(3).lower(), textwrap.dedent(m.group(4)))
        for m in FENCE.finditer(text)
        if m.group(3).lower() in languages
    ]


def inline_code(text: str) -> list[str]:
    """Inline code spans outside fenced blocks."""
    return INLINE_CODE.findall(strip_fences(text))


def links(text: str) -> list[str]:
    """Targets of inline links, images and reference definitions outside code."""
    prose = INLINE_CODE.sub("", strip_fences(text))
    return LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def slugify(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    parts = re.split(r"(`[^`]*`)", heading)  # inline HTML goes, code keeps its text
    heading = "".join(p if p.startswith("`") else re.sub(r"<[^>]+>", "", p) for p in parts)
    heading = unicodedata.normalize("NFC", heading).strip().lower()
    heading = re.sub(r"[^\w\- ]", "", heading)
    return heading.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page defines: heading slugs (with GitHub's -1, -2 suffixes) and <a id>."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, title in HEADING.findall(strip_fences(text)):
        slug = slugify(title)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found | set(HTML_ANCHOR.findall(text))


def split_commands(line: str) -> list[list[str]]:
    """Simple commands of one shell line (pipes, ``&&``, ``;`` split; ``$(…)`` included)."""
    commands: list[list[str]] = []
    for inner in re.findall(r"\$\(([^()]*)\)", line):
        commands.extend(split_commands(inner))
    line = re.sub(r"\$\([^()]*\)", "SUBSTITUTED", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        tokens = line.split()
    current: list[str] = []
    for token in tokens:
        if token in OPERATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    cleaned = []
    for command in commands:
        # Leading environment assignments (FOO=bar cmd) and a `sudo` do not name the program.
        while command and (
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[0])
            or command[0] in {"sudo", "exec", "time"}
        ):
            command = command[1:]
        if command:
            cleaned.append(command)
    return cleaned


def _logical_lines(block: str) -> Iterator[str]:
    """Lines of a shell block, a quoted string that spans lines kept in one."""
    pending = ""
    for line in block.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        yield pending
        pending = ""
    if pending:
        yield pending


def shell_lines(text: str) -> Iterator[str]:
    """The command lines of a document's shell blocks, in the order written.

    Backslash continuations are joined and a quoted string that spans lines stays in one line;
    comment lines and blank lines are dropped. In ``console`` blocks only the lines after a
    ``$`` prompt are commands (the rest is output); the prompt is removed.
    """
    for language, block in fenced_blocks(text):
        block = re.sub(r"\\\n[ \t]*", " ", block)
        for raw in _logical_lines(block):
            line = raw.strip()
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            elif line.startswith("$ "):
                line = line[2:]
            if line and not line.startswith("#"):
                yield line


def shell_commands(text: str) -> Iterator[list[str]]:
    """Every simple command of a document's shell blocks and command-like inline code."""
    for line in shell_lines(text):
        yield from split_commands(line)
    for span in inline_code(text):
        words = span.split()
        if words and program(words[0]) in {"kedro", "make", "python"}:
            yield from split_commands(span)


def program(word: str) -> str:
    """The program a command word runs: ``.venv/bin/kedro`` is ``kedro``, ``python3`` is python."""
    name = word.rsplit("/", 1)[-1]
    return "python" if re.fullmatch(r"python3?(\.\d+)?", name) else name


def is_placeholder(token: str) -> bool:
    return bool(PLACEHOLDER.search(token)) or token.startswith("[")


def repo_path_of(token: str) -> str | None:
    """The repository path a token names (``src/x.py:12`` -> ``src/x.py``), or None."""
    token = token.strip("[]()'\",;")
    token = token.split("=", 1)[1] if re.match(r"^-?-?[\w.-]+=", token) else token
    if token.startswith("./"):
        token = token[2:]
    if not token.startswith(REPO_PREFIXES) or is_placeholder(token) or " " in token:
        return None
    return re.split(r"::|#|:(?=\d)", token, maxsplit=1)[0]


# ------------------------------------------------------------------------------ the checks


def check_links(doc: Path, text: str, read: Callable[[Path], str]) -> list[str]:
    """Relative links that do not resolve to a file (or to a heading of that file)."""
    problems = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
            continue
        path_part, _, fragment = target.partition("#")
        if not path_part:  # a heading of this page
            if fragment not in anchors(text):
                problems.append(f"link to missing heading {target} of this page")
            continue
        path = (doc.parent / path_part).resolve()
        if not path.exists():
            problems.append(f"link to missing {target}")
            continue
        if fragment and path.suffix == ".md" and fragment not in anchors(read(path)):
            problems.append(f"link to missing heading {target} (#{fragment} not in {path.name})")
    return problems


def _parameter_exists(key: str, parameters: dict[str, Any]) -> bool:
    node: Any = parameters
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def check_params(value: str, facts: Facts, env: str | None) -> list[str]:
    """Keys of a ``--params a.b=1,c=x`` value that are not in conf/base (or the env)."""
    problems = []
    for item in filter(None, value.split(",")):
        if "=" not in item:
            continue  # a comma inside a value (a list), not a new key
        key = item.split("=", 1)[0].strip()
        if is_placeholder(key) or not key:
            continue
        if not _parameter_exists(key, facts.parameters) and not (
            env and _parameter_exists(key, facts.env_parameters.get(env, {}))
        ):
            problems.append(f"--params key {key!r} is not a parameter in conf/base")
    return problems


def option_values(command: list[str], names: tuple[str, ...]) -> list[str]:
    """Values given to any of the options ``names`` (``--x v`` and ``--x=v``)."""
    values = []
    for index, token in enumerate(command):
        for name in names:
            if token == name and index + 1 < len(command):
                values.append(command[index + 1])
            elif token.startswith(name + "="):
                values.append(token.split("=", 1)[1])
    return values


def command_options(command: click.Command, ctx: click.Context) -> set[str]:
    """Every option string a click command accepts, help included."""
    options = {"--help"}
    help_option = command.get_help_option(ctx)
    if help_option is not None:
        options.update(help_option.opts)
    for param in command.params:
        if isinstance(param, click.Option):
            options.update(param.opts)
            options.update(param.secondary_opts)
    return options


def check_options(
    name: str, command: click.Command, ctx: click.Context, args: list[str]
) -> list[str]:
    """Options in ``args`` that ``command`` does not have."""
    known = command_options(command, ctx)
    return [
        f"`{name}` has no option {token.split('=')[0]}"
        for token in args
        if token.startswith("-")
        and token != "-"
        and not is_placeholder(token)
        and token.split("=")[0] not in known
    ]


def check_kedro(command: list[str], facts: Facts) -> list[str]:
    """The subcommand path, its options, pipelines and parameter keys of a ``kedro`` command."""
    problems: list[str] = []
    current: click.Command = facts.kedro_cli
    ctx = click.Context(current, info_name="kedro")
    path = ["kedro"]
    rest = command[1:]
    while isinstance(current, click.Group) and rest:
        word = rest[0]
        if word.startswith("-"):  # a top-level option such as --version
            rest = rest[1:]
            continue
        if is_placeholder(word):
            return problems
        sub = current.get_command(ctx, word)
        if sub is None:
            problems.append(f"`{' '.join(path)}` has no subcommand {word!r}")
            return problems
        path.append(word)
        ctx = click.Context(sub, parent=ctx, info_name=word)
        current, rest = sub, rest[1:]
    if isinstance(current, click.Group) and len(path) == 1:
        return problems  # bare `kedro`
    problems += check_options(" ".join(path), current, ctx, rest)
    for value in option_values(rest, ("--pipeline", "-p", "--pipelines")):
        for name in filter(None, (v.strip() for v in value.split(","))):
            if not is_placeholder(name) and name not in facts.pipelines:
                problems.append(
                    f"pipeline {name!r} is not registered (have {sorted(facts.pipelines)})"
                )
    env = next(iter(option_values(rest, ("--env", "-e"))), None)
    for value in option_values(rest, ("--params",)):
        problems += check_params(value, facts, env)
    return problems


def check_make(command: list[str], facts: Facts) -> list[str]:
    """Targets of a ``make`` command that the Makefile does not define."""
    return [
        f"make target {word!r} is not in the Makefile (have {sorted(facts.make_targets)})"
        for word in command[1:]
        if not word.startswith("-")
        and "=" not in word
        and not is_placeholder(word)
        and word not in facts.make_targets
    ]


def _click_command(module: Any) -> click.Command | None:
    """The single click command a module defines, if it defines exactly one."""
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, click.Command)
        and getattr(value.callback, "__module__", None) == module.__name__
        and not isinstance(value, click.Group)
    ]
    return found[0] if len(found) == 1 else None


def check_python(command: list[str], facts: Facts) -> list[str]:
    """``python -m module`` imports and runs (and takes its options); scripts exist."""
    args = command[1:]
    if not args:
        return []
    if args[0] != "-m":
        script = args[0]
        if script.startswith("-") or is_placeholder(script) or not script.endswith(".py"):
            return []
        path = repo_path_of(script)
        if path is not None and not (facts.root / path).is_file():
            return [f"script {script} does not exist"]
        return []
    if len(args) < 2 or is_placeholder(args[1]):
        return []
    name = args[1]
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return [f"`python -m {name}`: module does not import ({type(exc).__name__}: {exc})"]
    if hasattr(module, "__path__"):  # a package runs its __main__
        if importlib.util.find_spec(f"{name}.__main__") is None:
            return [f"`python -m {name}`: package has no __main__ module"]
        return []
    cli = _click_command(module)
    if cli is None:
        return []
    problems = check_options(f"python -m {name}", cli, click.Context(cli), args[2:])
    env = next(iter(option_values(args[2:], ("--env", "-e"))), None)
    for value in option_values(args[2:], ("--params",)):
        problems += check_params(value, facts, env)
    return problems


def check_paths(tokens: list[str], facts: Facts) -> list[str]:
    """Repository paths among ``tokens`` that do not exist (nor are for the user to create)."""
    problems = []
    for previous, token in zip(["", *tokens], tokens, strict=False):
        if previous in {">", ">>"} or token.startswith(">"):
            continue  # a redirection target is written, not read
        path = repo_path_of(token)
        if path is None or path.startswith(facts.user_created):
            continue
        if not (facts.root / path).exists():
            problems.append(f"path {path} does not exist")
    return problems


def check_command(command: list[str], facts: Facts) -> list[str]:
    """Everything checkable about one simple shell command."""
    name = program(command[0])
    problems = [] if name in CREATES_FILES else check_paths(command[1:], facts)
    if name == "kedro":
        problems += check_kedro(command, facts)
    elif name == "make":
        problems += check_make(command, facts)
    elif name == "python":
        problems += check_python(command, facts)
    return problems


def check_markdown(
    doc: Path, text: str, facts: Facts, read: Callable[[Path], str] | None = None
) -> list[str]:
    """Every broken reference in one Markdown document, as readable messages."""
    read = read or (lambda path: path.read_text(encoding="utf-8"))
    problems = check_links(doc, text, read)
    for command in shell_commands(text):
        problems += [f"{shlex.join(command)}: {p}" for p in check_command(command, facts)]
    for span in inline_code(text):
        if " " not in span.strip():
            problems += [f"`{span}`: {p}" for p in check_paths([span], facts)]
    return list(dict.fromkeys(problems))
