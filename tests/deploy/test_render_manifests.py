"""churn_mlops.release.deploy: the export pins its image and model version into the bundle's
manifests with a generated kustomize component (``images:`` and a label), which kustomize
itself applies to every overlay."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from churn_mlops.release.deploy import (
    ManifestRenderError,
    default_source_dir,
    load_manifest_tree,
    parse_image,
    render_manifest_tree,
    render_manifests,
)
from tests.deploy.conftest import K8S_DIR, kustomize_build

IMAGE = "registry.example.com:5000/ml/churn-serving:7-3f9c2ab"
DIGEST_IMAGE = "registry.example.com/ml/churn-serving@sha256:" + "ab" * 32


def built(kubectl: str, folder: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(kustomize_build(kubectl, folder)) if doc]


def serving_deployments(objs: list[dict]) -> list[dict]:
    return [
        obj
        for obj in objs
        if obj["kind"] == "Deployment"
        and any(c["name"] == "serving" for c in obj["spec"]["template"]["spec"]["containers"])
    ]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("churn-serving:3", {"newName": "churn-serving", "newTag": "3"}),
        (IMAGE, {"newName": "registry.example.com:5000/ml/churn-serving", "newTag": "7-3f9c2ab"}),
        (
            DIGEST_IMAGE,
            {"newName": "registry.example.com/ml/churn-serving", "digest": "sha256:" + "ab" * 32},
        ),
    ],
)
def test_parse_image(image: str, expected: dict[str, str]) -> None:
    assert parse_image(image) == expected


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("churn-serving", "has no tag"),
        ("localhost:5000/churn-serving", "has no tag"),
        ("churn-serving:", "has tag ''"),
        ("churn-serving:-bad", "has tag '-bad'"),
        ("churn-serving@sha256:xyz", "has digest"),
        ("Churn/Serving:1", "has name 'Churn/Serving'"),
        (" churn-serving:1", "not an image reference"),
        ("", "not an image reference"),
    ],
)
def test_parse_image_refuses_unpinned_or_malformed_images(image: str, message: str) -> None:
    with pytest.raises(ManifestRenderError, match=message):
        parse_image(image)


def test_rendering_in_memory_changes_only_the_generated_components() -> None:
    files = load_manifest_tree(K8S_DIR)
    rendered = render_manifest_tree(files, image=IMAGE, model_version="7")
    changed = {path for path in files if rendered[path] != files[path]}
    assert changed == {"release/serving/kustomization.yaml"}
    assert yaml.safe_load(rendered["release/serving/kustomization.yaml"]) == {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "images": [
            {
                "name": "churn-serving",
                "newName": "registry.example.com:5000/ml/churn-serving",
                "newTag": "7-3f9c2ab",
            }
        ],
        "labels": [
            {
                "pairs": {"app.kubernetes.io/version": "7"},
                "includeSelectors": False,
                "includeTemplates": True,
            }
        ],
    }
    assert files == load_manifest_tree(K8S_DIR), "the input tree was modified"
    with_jobs = render_manifest_tree(
        files, image=IMAGE, model_version="7", pipelines_image="registry.example.com/ml/p:7"
    )
    changed = {path for path in files if with_jobs[path] != files[path]}
    assert changed == {"release/serving/kustomization.yaml", "release/pipelines/kustomization.yaml"}


@pytest.mark.parametrize("version", ["", "v 1", "-3", "x" * 64, "3/4"])
def test_model_version_must_be_a_label_value(version: str) -> None:
    with pytest.raises(ManifestRenderError, match="model version"):
        render_manifest_tree(load_manifest_tree(K8S_DIR), image=IMAGE, model_version=version)


def test_a_base_without_the_component_is_named() -> None:
    files = load_manifest_tree(K8S_DIR)
    files["base/kustomization.yaml"] = files["base/kustomization.yaml"].replace(
        "  - ../release/serving\n", "  - ../components/shared-prediction-log\n"
    )
    with pytest.raises(ManifestRenderError, match="does not list the component 'release/serving'"):
        render_manifest_tree(files, image=IMAGE, model_version="7")
    del files["release/serving/kustomization.yaml"]
    with pytest.raises(ManifestRenderError, match="release/serving/kustomization.yaml"):
        render_manifest_tree(files, image=IMAGE, model_version="7")


@pytest.mark.parametrize("image", [IMAGE, DIGEST_IMAGE])
def test_rendered_bundle_deploys_the_image_and_version_in_every_overlay(
    tmp_path: Path, kubectl: str, image: str
) -> None:
    out = render_manifests(image, "7", tmp_path / "bundle" / "k8s", source_dir=K8S_DIR)
    expected_deployments = {
        "rolling": {"churn-serving"},
        "canary": {"churn-serving-stable", "churn-serving-canary"},
        "blue-green": {"churn-serving-blue", "churn-serving-green"},
        "canary/candidate": {"churn-serving-canary"},
        "blue-green/green": {"churn-serving-green"},
    }
    for overlay, names in expected_deployments.items():
        deployments = serving_deployments(built(kubectl, out / overlay))
        assert {d["metadata"]["name"] for d in deployments} == names
        for deployment in deployments:
            template = deployment["spec"]["template"]
            (container,) = template["spec"]["containers"]
            assert container["image"] == image
            assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "7"
            # The version stays out of the selector: it is immutable on a live Deployment.
            assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]
    # The checkout's own tree keeps its placeholder.
    (source_deployment,) = serving_deployments(built(kubectl, K8S_DIR / "rolling"))
    assert source_deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "churn-serving:latest"
    )


def test_rendering_sets_the_pipelines_image_of_the_jobs(tmp_path: Path, kubectl: str) -> None:
    out = render_manifests(
        IMAGE, "7", tmp_path / "k8s", source_dir=K8S_DIR, pipelines_image="reg.example/p:7"
    )
    for overlay in ("jobs/training", "jobs/export"):
        text = kustomize_build(kubectl, out / overlay)
        assert "image: reg.example/p:7" in text


def test_rendering_is_reproducible_and_keeps_scripts_executable(tmp_path: Path) -> None:
    first = render_manifests(IMAGE, "7", tmp_path / "a", source_dir=K8S_DIR)
    second = render_manifests(IMAGE, "7", tmp_path / "b", source_dir=K8S_DIR)
    assert load_manifest_tree(first) == load_manifest_tree(second)
    for script in ("blue-green/switch.sh", "canary/set-weight.sh"):
        assert os.access(first / script, os.X_OK), script


def test_failed_render_leaves_the_previous_output_in_place(tmp_path: Path) -> None:
    out = render_manifests(IMAGE, "7", tmp_path / "k8s", source_dir=K8S_DIR)
    before = load_manifest_tree(out)
    with pytest.raises(ManifestRenderError):
        render_manifests("not pinned", "8", out, source_dir=K8S_DIR)
    assert load_manifest_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k8s"], "staging folder left behind"
    # A successful re-render replaces the folder whole.
    render_manifests(IMAGE.replace(":7-", ":8-"), "8", out, source_dir=K8S_DIR)
    component = out / "release" / "serving" / "kustomization.yaml"
    assert "app.kubernetes.io/version: '8'" in component.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k8s"]


def test_default_source_is_the_checkout() -> None:
    assert default_source_dir() == K8S_DIR


def test_command_line_renders_and_refuses_bad_input(tmp_path: Path, kubectl: str) -> None:
    import subprocess
    import sys

    out = tmp_path / "k8s"
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "churn_mlops.release.deploy",
            "--image",
            IMAGE,
            "--model-version",
            "7",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(out)
    assert f"image: {IMAGE}" in kustomize_build(kubectl, out / "rolling")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "churn_mlops.release.deploy",
            "--image",
            "churn-serving",
            "--model-version",
            "8",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "'churn-serving' has no tag" in bad.stderr
    assert f"image: {IMAGE}" in kustomize_build(kubectl, out / "rolling"), "output was touched"
