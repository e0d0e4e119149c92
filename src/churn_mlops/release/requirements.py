"""Pin a dependency closure to the versions installed here, with ``uv pip compile``.

The serving container must run the model with the very library versions that trained and
evaluated it, so the closure is resolved by uv with every *installed* distribution as a
constraint (``pip freeze`` style: ``name==version``), against local wheels only (``--no-index
--find-links``): first the wheel cache, to learn which wheels the bundle needs, then the
bundle's own ``wheelhouse/`` with ``--generate-hashes`` for ``requirements.txt``
(:func:`churn_mlops.release.wheelhouse.fill_wheelhouse` runs both). A pin whose version differs
from the installed one is refused.

Substitutions swap a distribution for a drop-in twin that provides the same import package
(``xgboost`` -> ``xgboost-cpu``, same version, without the 300 MB NCCL library of the GPU
build): the twin replaces the original among the roots and takes its installed version as
constraint, and the original is overridden out of the resolution. Exclusions drop a
distribution wherever it appears (``nvidia-nccl-cu12``, which xgboost's GPU build pulls). Both
become uv ``--override`` lines with a marker that never holds.

The pipelines image (:mod:`churn_mlops.release.pipelines_image`) pins the project's whole runtime
(``dependencies`` plus the ``serving`` extra) the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from churn_mlops.release.errors import RequirementsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads pyproject.toml with the tomli backport
    import tomli as tomllib


@dataclass(frozen=True, order=True)
class Pin:
    """One pinned serving dependency.

    Attributes:
        name: Canonical name of the distribution to install (after substitution).
        version: The exact version to install.
        installed_as: Canonical name of the installed distribution that gave the version
            (differs from ``name`` only for substitutions).
    """

    name: str
    version: str
    installed_as: str

    @property
    def requirement(self) -> str:
        """``name==version``."""
        return f"{self.name}=={self.version}"


def _project_table(pyproject: Path) -> dict:
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise RequirementsError(f"cannot read [project] of {pyproject}: {exc}") from exc


def project_requirements(pyproject: Path, extras: Iterable[str] = ()) -> list[str]:
    """The requirement strings of a ``pyproject.toml``: its ``dependencies``, then ``extras``.

    Raises:
        RequirementsError: the file is missing or has no such optional-dependency group.
    """
    base = list(_project_table(pyproject).get("dependencies", []))
    return [*base, *project_extra_requirements(pyproject, extras)]


def project_extra_requirements(pyproject: Path, extras: Iterable[str]) -> list[str]:
    """The requirement strings of optional-dependency groups of a ``pyproject.toml``.

    Raises:
        RequirementsError: the file is missing or has no such group.
    """
    groups = _project_table(pyproject).get("optional-dependencies", {})
    found: list[str] = []
    for extra in extras:
        if extra not in groups:
            raise RequirementsError(
                f"{pyproject} has no optional-dependency group {extra!r}; groups: {sorted(groups)}"
            )
        found.extend(groups[extra])
    return found


def _parse(text: str, where: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementsError(f"requirement {text!r} of {where} is not valid: {exc}") from exc


def installed_versions() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution installed here (``pip freeze``)."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # the first one on sys.path wins, as for imports
            versions.setdefault(canonicalize_name(name), dist.version)
    return versions


@dataclass(frozen=True)
class ResolutionInputs:
    """The three files ``uv pip compile`` reads: roots, constraints and overrides."""

    roots: list[str]
    constraints: list[str]
    overrides: list[str]
    substitutions: dict[str, str]


def resolution_inputs(
    roots: Iterable[str],
    *,
    substitutions: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
) -> ResolutionInputs:
    """Roots with substitutions applied and exclusions dropped, the installed versions as
    constraints, and overrides that keep the excluded and substituted distributions out.

    Raises:
        RequirementsError: a root is not a valid requirement or is not installed here.
    """
    subs = {canonicalize_name(k): canonicalize_name(v) for k, v in (substitutions or {}).items()}
    excluded = {canonicalize_name(name) for name in exclude}
    installed = installed_versions()
    kept = []
    for text in roots:
        requirement = _parse(text, "the export roots")
        name = canonicalize_name(requirement.name)
        if name in excluded:
            continue
        applies = requirement.marker is None or requirement.marker.evaluate()
        if applies and name not in installed:
            raise RequirementsError(
                f"{text} (a root of the closure) is not installed in this environment; install"
                " the project with its serving extra: pip install -e '.[serving]'"
            )
        requirement.name = subs.get(name, requirement.name)
        kept.append(str(requirement))
    for original, twin in subs.items():
        if original in installed:
            installed[twin] = installed[original]
    never = '; sys_platform == "never"'
    return ResolutionInputs(
        roots=kept,
        constraints=[f"{n}=={v}" for n, v in sorted(installed.items()) if n not in excluded],
        overrides=[f"{name}{never}" for name in sorted(excluded | set(subs))],
        substitutions=subs,
    )


def compile_requirements(
    inputs: ResolutionInputs,
    find_links: Path,
    *,
    generate_hashes: bool = False,
    timeout_s: float = 300.0,
) -> str:
    """``uv pip compile`` of ``inputs`` against the wheels in ``find_links`` alone.

    Returns:
        The requirements text uv writes (``name==version`` lines, with ``--hash`` options when
        ``generate_hashes``), without uv's header and annotations.

    Raises:
        RequirementsError: uv finds no solution among those wheels (its message says which
            distribution or version is missing).
    """
    from uv import find_uv_bin

    with tempfile.TemporaryDirectory(prefix="churn-uv-") as scratch:
        folder = Path(scratch)
        for name, lines in (
            ("roots.in", inputs.roots),
            ("constraints.txt", inputs.constraints),
            ("overrides.txt", inputs.overrides),
        ):
            (folder / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        command = [
            find_uv_bin(), "pip", "compile", "roots.in", "--constraint", "constraints.txt",
            "--override", "overrides.txt", "--no-index", "--find-links", str(find_links.absolute()),
            "--python", sys.executable, "--no-header", "--no-annotate", "--quiet",
            "--no-config", "--output-file", "requirements.txt",
            *(["--generate-hashes"] if generate_hashes else []),
        ]  # fmt: skip
        try:
            proc = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                command, cwd=folder, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RequirementsError(f"uv pip compile did not finish in {timeout_s:.0f} s") from exc
        if proc.returncode != 0:
            raise RequirementsError(
                f"uv pip compile found no solution among the wheels in {find_links}:\n"
                f"{(proc.stderr or proc.stdout).strip()[-3000:]}"
            )
        return (folder / "requirements.txt").read_text(encoding="utf-8")


def pins_of(text: str, inputs: ResolutionInputs) -> list[Pin]:
    """The pins of a compiled requirements text, each checked against the installed version.

    Raises:
        RequirementsError: a pinned distribution is not installed here, or at another version
            (the message names both).
    """
    installed = installed_versions()
    originals = {twin: original for original, twin in inputs.substitutions.items()}
    pins = []
    for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, flags=re.M):
        name = canonicalize_name(name)
        source = originals.get(name, name)
        if installed.get(source) != version:
            found = installed.get(source)
            raise RequirementsError(
                f"{name}=={version} is in the resolved closure but "
                + (f"{source} {found} is installed" if found else f"{source} is not installed")
                + " in this environment; install the project with its serving extra:"
                " pip install -e '.[serving]'"
            )
        pins.append(Pin(name=name, version=version, installed_as=source))
    return sorted(pins)
