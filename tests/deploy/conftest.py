"""Fixtures for the deployment tests: rendered kustomize trees and the real tools that check them.

The tools are the ones CI installs (``kubectl``, ``kubernetes-validate`` from the dev extras,
``prometheus``/``promtool`` from Debian's package); a test that needs a missing one is skipped
with the reason (fails when ``CI`` is set, see tests/tools.py), never faked.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.tools import tool

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = PROJECT_ROOT / "deploy"
K8S_DIR = DEPLOY_DIR / "k8s"

#: Every folder of deploy/k8s that kustomize can build (base, overlays and their parts).
KUSTOMIZE_DIRS: tuple[str, ...] = tuple(
    sorted(
        path.parent.relative_to(K8S_DIR).as_posix() for path in K8S_DIR.rglob("kustomization.yaml")
    )
)


def _included_elsewhere(name: str) -> bool:
    """Whether another kustomization lists this folder as a resource or component."""
    folder = (K8S_DIR / name).resolve()
    for path in K8S_DIR.rglob("kustomization.yaml"):
        spec = yaml.safe_load(path.read_text()) or {}
        for entry in (spec.get("resources") or []) + (spec.get("components") or []):
            if (path.parent / entry).resolve() == folder:
                return True
    return False


#: The folders an operator applies: those no other kustomization includes.
TOP_LEVEL_DIRS: tuple[str, ...] = tuple(d for d in KUSTOMIZE_DIRS if not _included_elsewhere(d))


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The kubectl binary (``kubectl kustomize`` and ``kubectl patch --local`` need no cluster)."""
    return tool("kubectl")


def kustomize_build(kubectl_path: str, directory: Path) -> str:
    """``kubectl kustomize DIRECTORY`` as text; fails the test with kustomize's message."""
    proc = subprocess.run(
        [kubectl_path, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed:\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, str]:
    """The ``kubectl kustomize`` output of every kustomize folder, keyed by its relative path."""
    return {name: kustomize_build(kubectl, K8S_DIR / name) for name in KUSTOMIZE_DIRS}


#: Serving overlays that can take the optional components.
SHARED_LOG_COMPONENT = "components/shared-prediction-log"
SHARED_LOG_OVERLAYS = ("rolling", "canary", "blue-green")
FEATURE_STORE_COMPONENT = "components/feature-store"
FEATURE_STORE_OVERLAYS = SHARED_LOG_OVERLAYS


def build_with_component(
    kubectl_path: str, copy: Path, overlays: tuple[str, ...], component: str, suffix: str
) -> dict[str, str]:
    """Each overlay built with ``component``, as an ops team would add it (an overlay next to
    the others, in ``copy``, a copy of deploy/k8s), keyed ``<overlay>-<suffix>``."""
    builds = {}
    for overlay in overlays:
        folder = copy / f"{overlay}-{suffix}"
        folder.mkdir()
        (folder / "kustomization.yaml").write_text(
            f"resources:\n  - ../{overlay}\ncomponents:\n  - ../{component}\n"
        )
        builds[f"{overlay}-{suffix}"] = kustomize_build(kubectl_path, folder)
    return builds


@pytest.fixture(scope="session")
def k8s_tree_copy(tmp_path_factory) -> Path:
    """A copy of deploy/k8s that test overlays may be added to."""
    import shutil

    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S_DIR, copy)
    return copy


@pytest.fixture(scope="session")
def rendered_with_shared_log(kubectl: str, k8s_tree_copy: Path) -> dict[str, str]:
    """Each serving overlay built with the shared-prediction-log component."""
    return build_with_component(
        kubectl, k8s_tree_copy, SHARED_LOG_OVERLAYS, SHARED_LOG_COMPONENT, "shared-log"
    )


@pytest.fixture(scope="session")
def rendered_with_feature_store(kubectl: str, k8s_tree_copy: Path) -> dict[str, str]:
    """Each serving overlay built with the feature-store component (scoring by customer id)."""
    return build_with_component(
        kubectl, k8s_tree_copy, FEATURE_STORE_OVERLAYS, FEATURE_STORE_COMPONENT, "feature-store"
    )


@pytest.fixture(scope="session")
def objects(
    rendered: dict[str, str],
    rendered_with_shared_log: dict[str, str],
    rendered_with_feature_store: dict[str, str],
) -> Callable[[str], list[dict]]:
    """Parsed objects of a build: ``objects("canary")``, ``objects("rolling-shared-log")``."""
    builds = {**rendered, **rendered_with_shared_log, **rendered_with_feature_store}
    parsed = {
        name: [doc for doc in yaml.safe_load_all(text) if doc] for name, text in builds.items()
    }
    return parsed.__getitem__


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory) -> Path:
    """A small serving bundle, made by the serving package's own demo builder."""
    from churn_mlops.release.demo import make_demo_bundle

    return make_demo_bundle(
        tmp_path_factory.mktemp("bundle") / "demo", n_rows=600, model_version="7", n_jobs=1
    )
