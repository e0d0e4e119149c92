"""Pin the serving app's dependency closure to the versions installed in this environment.

The serving container must run the model with the very library versions that trained and
evaluated it, so nothing is re-resolved against an index: starting from the project's
``serving`` extra and the model's runtime libraries, the closure is walked through the
*installed* distributions' metadata (``importlib.metadata``), each one pinned to its installed
version. Substitutions swap a distribution for a drop-in twin that provides the same import
package (``xgboost`` -> ``xgboost-cpu``, same version, without the 300 MB NCCL library of the
GPU build); exclusions drop what the twin does not need (``nvidia-nccl-cu12``).

The pipelines image (:mod:`churn_mlops.release.pipelines_image`) pins the project's whole runtime
(``dependencies`` plus the ``serving`` extra) the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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


def resolve_pins(
    roots: Iterable[str],
    *,
    substitutions: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
) -> list[Pin]:
    """Pin every distribution the ``roots`` need, at its installed version.

    Args:
        roots: Requirement strings (``"fastapi>=0.115,<1"``, ``"uvicorn[standard]"``,
            ``"numpy"``); extras are followed, environment markers are evaluated for this
            interpreter and platform.
        substitutions: Canonical name -> the distribution installed in its place, at the
            same version.
        exclude: Canonical names left out of the closure (and their own dependencies).

    Returns:
        The pins sorted by name.

    Raises:
        RequirementsError: a needed distribution is not installed, or its installed version
            does not satisfy a requirement on the way (the message names both).
    """
    substitutions = {canonicalize_name(k): v for k, v in (substitutions or {}).items()}
    excluded = {canonicalize_name(name) for name in exclude}
    versions: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    queue = [(_parse(text, "the export roots"), "the export roots") for text in roots]
    while queue:
        requirement, needed_by = queue.pop()
        name = canonicalize_name(requirement.name)
        if name in excluded:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise RequirementsError(
                f"{requirement} (needed by {needed_by}) is not installed in this environment; "
                "install the project with its serving extra: pip install -e '.[serving]'"
            ) from exc
        version = dist.version
        if requirement.specifier and not requirement.specifier.contains(
            Version(version), prereleases=True
        ):
            raise RequirementsError(
                f"{needed_by} needs {requirement} but {name} {version} is installed"
            )
        first_visit = name not in versions
        new_extras = set(requirement.extras) - extras_seen.get(name, set())
        if not first_visit and not new_extras:
            continue
        versions[name] = version
        extras_seen.setdefault(name, set()).update(new_extras)
        # A first visit follows the plain requirements and the requested extras; a revisit
        # only what the newly requested extras add.
        active = ({""} | new_extras) if first_visit else new_extras
        for text in dist.requires or []:
            child = _parse(text, f"{name} {version}")
            if child.marker is None:
                applies = first_visit
            else:
                applies = any(child.marker.evaluate({"extra": extra}) for extra in active)
            if applies:
                queue.append((child, f"{name} {version}"))
    return sorted(
        Pin(name=canonicalize_name(substitutions.get(name, name)), version=v, installed_as=name)
        for name, v in versions.items()
    )


def render_requirements(pins: Iterable[Pin], hashes: Mapping[str, str], header: str) -> str:
    """``requirements.txt`` with one ``name==version --hash=sha256:...`` line per pin.

    Hash-checking mode makes ``pip install --require-hashes`` refuse any other file, so the
    image installs byte-for-byte the wheels the parity gate tested.

    Args:
        pins: The pinned distributions.
        hashes: Canonical name -> sha256 of its wheel in the wheelhouse.
        header: Comment lines (without ``#``) written on top.

    Raises:
        RequirementsError: a pin has no wheel hash.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for pin in pins:
        if pin.name not in hashes:
            raise RequirementsError(f"no wheel for {pin.requirement} in the wheelhouse")
        lines.append(f"{pin.requirement} \\\n    --hash=sha256:{hashes[pin.name]}")
    return "\n".join(lines) + "\n"
