"""Pin the image and model version of ``deploy/k8s`` for one export: a generated kustomize overlay.

The kustomize tree in ``deploy/k8s`` names its images by placeholder (``churn-serving``,
``churn-mlops-pipelines``) in two small components, ``release/serving`` (included by
``base``, so every serving overlay, canary tracks and blue-green colours too, goes through
it) and ``release/pipelines`` (included by ``jobs/common``). Rendering copies the tree
unchanged and *generates* those components anew: kustomize's ``images:`` field with
``newName`` and ``newTag`` or ``digest``, and, for serving, the pods' model-version label
(``app.kubernetes.io/version``, templates only: a Deployment's selector cannot change). No
other file is read as YAML or rewritten; kustomize itself applies the pins, so ``kubectl
apply -k <out_dir>/rolling`` deploys exactly the exported version.

The export pipeline calls :func:`render_manifests` to write the ``k8s/`` folder of its bundle;
:func:`render_manifest_tree` is the pure part, usable from a Kedro node. Ops can do the same by
hand::

    python -m churn_mlops.release.deploy --image registry.example.com/ml/churn-serving:7 \\
        --model-version 7 --out dist/k8s
"""

from __future__ import annotations

import argparse
import logging
import os
import posixpath
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import yaml

logger = logging.getLogger(__name__)

#: Image placeholder of the serving container in ``deploy/k8s/base``.
SERVING_IMAGE_PLACEHOLDER = "churn-serving"
#: Image placeholder of the pipelines container in ``deploy/k8s/jobs/common``.
PIPELINES_IMAGE_PLACEHOLDER = "churn-mlops-pipelines"
#: The generated components (image pins), relative to the tree's root, and the
#: kustomizations that must include them.
SERVING_COMPONENT = "release/serving/kustomization.yaml"
PIPELINES_COMPONENT = "release/pipelines/kustomization.yaml"
SERVING_KUSTOMIZATION = "base/kustomization.yaml"
PIPELINES_KUSTOMIZATION = "jobs/common/kustomization.yaml"
#: Pod label that carries the model version.
VERSION_LABEL = "app.kubernetes.io/version"

# A Kubernetes label value: at most 63 characters, alphanumerics at both ends, -_. inside.
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
# An image reference: name[:tag] or name@algorithm:hex. The name may hold a registry host
# with a port (registry:5000/team/app), so the tag is what follows the last ':' after the
# last '/'.
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_NAME = re.compile(r"^[a-z0-9]+(?:[._-]+[a-z0-9]+|:[0-9]+(?=/)|/[a-z0-9]+)*$")


class ManifestRenderError(ValueError):
    """The image, model version or manifest tree given to the renderer is not usable."""


def default_source_dir() -> Path:
    """The ``deploy/k8s`` folder of the project checkout this package was installed from.

    Raises:
        ManifestRenderError: if the package is not installed from a checkout (a wheel in a
            container, say); pass ``source_dir`` explicitly then.
    """
    candidate = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
    if not (candidate / SERVING_KUSTOMIZATION).is_file():
        raise ManifestRenderError(
            f"no kustomize tree at {candidate} (expected {SERVING_KUSTOMIZATION} there): the "
            "package is not installed from a project checkout; pass source_dir= explicitly"
        )
    return candidate


def parse_image(image: str) -> dict[str, str]:
    """Split an image reference into the kustomize ``images:`` fields.

    Args:
        image: ``name:tag`` or ``name@sha256:<hex>``; the name may include a registry host
            and port. A tag or digest is required: a bare name would deploy whatever
            ``latest`` happens to be, which no export can reproduce.

    Returns:
        ``{"newName": ..., "newTag": ...}`` or ``{"newName": ..., "digest": ...}``.

    Raises:
        ManifestRenderError: naming the image and what was expected.
    """
    if not isinstance(image, str) or not image or image != image.strip():
        raise ManifestRenderError(
            f"image {image!r} is not an image reference; expected 'name:tag' or 'name@sha256:<hex>'"
        )
    if "@" in image:
        name, digest = image.split("@", 1)
        if not _DIGEST.match(digest):
            raise ManifestRenderError(
                f"image {image!r} has digest {digest!r}; expected '<algorithm>:<hex>', "
                "e.g. 'sha256:' followed by 64 hex digits"
            )
        fields = {"newName": name, "digest": digest}
    else:
        slash = image.rfind("/")
        colon = image.rfind(":")
        if colon <= slash:
            raise ManifestRenderError(
                f"image {image!r} has no tag; expected 'name:tag' or 'name@sha256:<hex>' "
                "(a bare name would deploy an unpinned 'latest')"
            )
        name, tag = image[:colon], image[colon + 1 :]
        if not _TAG.match(tag):
            raise ManifestRenderError(
                f"image {image!r} has tag {tag!r}; expected 1-128 characters of letters, "
                "digits, '_', '.' and '-', not starting with '.' or '-'"
            )
        fields = {"newName": name, "newTag": tag}
    if not _NAME.match(fields["newName"]):
        raise ManifestRenderError(
            f"image {image!r} has name {fields['newName']!r}; expected a registry path such as "
            "'registry.example.com:5000/team/churn-serving'"
        )
    return fields


def _check_model_version(model_version: str) -> str:
    model_version = str(model_version)
    if not _LABEL_VALUE.match(model_version):
        raise ManifestRenderError(
            f"model version {model_version!r} cannot be a Kubernetes label value; expected at "
            "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return model_version


def _require_component(files: Mapping[str, str], parent: str, component: str) -> None:
    """Fail unless ``parent`` lists the folder of ``component`` under ``components:``."""
    if parent not in files or component not in files:
        missing = [path for path in (parent, component) if path not in files]
        raise ManifestRenderError(
            f"manifest tree has no {missing}; expected the layout of deploy/k8s "
            f"(files present: {sorted(files)[:10]}...)"
        )
    loaded = yaml.safe_load(files[parent])
    if not isinstance(loaded, dict):
        raise ManifestRenderError(f"{parent} is not a YAML mapping; expected a Kustomization")
    folder = PurePosixPath(component).parent
    listed = {
        posixpath.normpath((PurePosixPath(parent).parent / entry).as_posix())
        for entry in loaded.get("components") or []
    }
    if folder.as_posix() not in listed:
        raise ManifestRenderError(
            f"{parent} does not list the component {folder.as_posix()!r} under 'components:'"
            f" (it lists {sorted(listed)}): the image pinned there would not reach its pods"
        )


def _component(placeholder: str, fields: Mapping[str, str], version: str | None) -> dict:
    """A kustomize Component that pins ``placeholder`` (and labels the pods with ``version``)."""
    component: dict = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "images": [{"name": placeholder, **fields}],
    }
    if version is not None:
        # Templates only: a Deployment's selector is immutable, so the version stays out of it.
        component["labels"] = [
            {
                "pairs": {VERSION_LABEL: version},
                "includeSelectors": False,
                "includeTemplates": True,
            }
        ]
    return component


def _dump(component: dict, header: str) -> str:
    return header + yaml.safe_dump(component, sort_keys=False, default_flow_style=False)


def render_manifest_tree(
    files: Mapping[str, str],
    *,
    image: str,
    model_version: str,
    pipelines_image: str | None = None,
) -> dict[str, str]:
    """Pin the serving image and the model version in a kustomize tree held in memory.

    Only the generated components differ from the input: ``release/serving`` (image and
    version label) and, with ``pipelines_image``, ``release/pipelines``.

    Args:
        files: the text of every file of ``deploy/k8s``, keyed by POSIX path relative to it.
        image: the serving image built from the bundle, ``name:tag`` or ``name@sha256:...``.
        model_version: the registry version of the exported model (a pod label value).
        pipelines_image: optionally, the project image for the training and export Jobs.

    Returns:
        A new mapping with the same keys; only the generated components differ. The input
        is not modified.

    Raises:
        ManifestRenderError: if the image, the version or the tree is not usable (a
            kustomization that does not include its component is named).
    """
    image_fields = parse_image(image)
    version = _check_model_version(model_version)
    header = (
        f"# Generated by churn_mlops.release.deploy for model version {version}, image {image}.\n"
        "# The placeholder it replaces and its comments are in the project's deploy/k8s.\n"
    )
    _require_component(files, SERVING_KUSTOMIZATION, SERVING_COMPONENT)
    rendered = dict(files)
    rendered[SERVING_COMPONENT] = _dump(
        _component(SERVING_IMAGE_PLACEHOLDER, image_fields, version), header
    )
    if pipelines_image is not None:
        pipelines_fields = parse_image(pipelines_image)
        _require_component(files, PIPELINES_KUSTOMIZATION, PIPELINES_COMPONENT)
        rendered[PIPELINES_COMPONENT] = _dump(
            _component(PIPELINES_IMAGE_PLACEHOLDER, pipelines_fields, None),
            header.replace(f"image {image}", f"image {pipelines_image}"),
        )
    return rendered


def load_manifest_tree(source_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Read every file under ``source_dir`` as text, keyed by POSIX path relative to it."""
    root = Path(source_dir)
    if not root.is_dir():
        raise ManifestRenderError(f"manifest folder {root} does not exist")
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def render_manifests(
    image: str,
    model_version: str,
    out_dir: str | os.PathLike[str],
    *,
    source_dir: str | os.PathLike[str] | None = None,
    pipelines_image: str | None = None,
) -> Path:
    """Write the kustomize tree with the image and model version pinned into ``out_dir``.

    The tree is written to a temporary sibling folder and moved into place at the end, so a
    failure leaves ``out_dir`` as it was; an existing ``out_dir`` is replaced whole. File
    modes are kept (the switch scripts stay executable).

    Args:
        image: the serving image, ``name:tag`` or ``name@sha256:...``.
        model_version: the registry version of the exported model.
        out_dir: destination folder, typically ``<bundle>/k8s``.
        source_dir: the kustomize tree to render; defaults to the checkout's ``deploy/k8s``.
        pipelines_image: optionally, the project image for the training and export Jobs.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.
    """
    source = Path(source_dir) if source_dir is not None else default_source_dir()
    files = load_manifest_tree(source)
    rendered = render_manifest_tree(
        files, image=image, model_version=model_version, pipelines_image=pipelines_image
    )
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for relative, text in rendered.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if text == files[relative]:
                shutil.copy2(source / relative, target)
            else:
                target.write_text(text, encoding="utf-8")
                shutil.copymode(source / relative, target)
        staging.chmod(0o755)
        if out.exists():
            retired = out.with_name(f".{out.name}-retired-{os.getpid()}")
            out.rename(retired)
            staging.rename(out)
            shutil.rmtree(retired)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "Rendered %d manifest files for model version %s, image %s into %s",
        len(rendered),
        model_version,
        image,
        out,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m churn_mlops.release.deploy --image IMAGE --model-version V
    --out DIR``.

    Exit codes: 0 rendered, 2 bad image, version or tree (the message names which).
    """
    parser = argparse.ArgumentParser(
        prog="python -m churn_mlops.release.deploy",
        description="Render deploy/k8s with the serving image and model version pinned.",
    )
    parser.add_argument("--image", required=True, help="serving image, name:tag or name@sha256:…")
    parser.add_argument("--model-version", required=True, help="registry version of the model")
    parser.add_argument("--out", required=True, type=Path, help="destination folder (replaced)")
    parser.add_argument("--source", type=Path, default=None, help="tree to render (deploy/k8s)")
    parser.add_argument("--pipelines-image", default=None, help="image of the pipeline Jobs")
    args = parser.parse_args(argv)
    try:
        out = render_manifests(
            args.image,
            args.model_version,
            args.out,
            source_dir=args.source,
            pipelines_image=args.pipelines_image,
        )
    except ManifestRenderError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    sys.stdout.write(f"{out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
