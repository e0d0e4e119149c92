"""The serving image's build arguments: what each export passes to the static Dockerfile.

The serving bundle's ``Dockerfile`` is one checked-in file, ``deploy/docker/serving/Dockerfile``
(two stages, offline ``--no-index --require-hashes`` install from the bundle's wheelhouse,
non-root user, a ``HEALTHCHECK`` that follows TLS). The bundle build copies it into the bundle
as it is; what differs between exports (base image, user id, port, folders, the model's labels)
reaches it as ``ARG`` values, which :func:`serving_build_args` derives from the ``export``
parameters and :func:`render_build_args` writes to the bundle's ``build-args.txt``, one
``--build-arg=NAME=VALUE`` per line, for::

    docker build $(cat build-args.txt) -t churn-serving:<tag> .
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from churn_mlops.release.errors import BundleContractError

if TYPE_CHECKING:
    from churn_mlops.pipelines.export.params import ContainerParams

#: The serving image's Dockerfile, relative to the project checkout.
SERVING_DOCKERFILE = Path("deploy") / "docker" / "serving" / "Dockerfile"
#: The bundle's file with the build arguments of its image.
BUILD_ARGS_FILE = "build-args.txt"

# A value survives the shell's word splitting of `$(cat build-args.txt)` unquoted.
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+=-]+$")


def serving_build_args(
    container: ContainerParams, *, model_name: str, model_version: str, run_id: str, revision: str
) -> dict[str, str]:
    """The ``ARG`` values of the serving Dockerfile for one exported model.

    Args:
        container: The validated ``export.container`` parameters.
        model_name: Registered model name (image labels).
        model_version: Registry version of the model (image labels).
        run_id: MLflow run that trained it (image label).
        revision: Git commit the model was trained from (OCI revision label).

    Returns:
        ``{ARG name: value}``, sorted by name. ``RELOAD_ROOT``, the only folder admin hot
        reloads may load from, is the folder holding ``model_dir``.
    """
    args = {
        "BASE_IMAGE": container.base_image,
        "APP_UID": str(container.uid),
        "PORT": str(container.port),
        "MODEL_DIR": container.model_dir,
        "RELOAD_ROOT": PurePosixPath(container.model_dir).parent.as_posix(),
        "PREDICTION_LOG_DIR": container.prediction_log_dir,
        "MODEL_NAME": model_name,
        "MODEL_VERSION": model_version,
        "MODEL_RUN_ID": run_id,
        "REVISION": revision,
    }
    return dict(sorted(args.items()))


def render_build_args(args: Mapping[str, str]) -> str:
    """The text of ``build-args.txt``: one ``--build-arg=NAME=VALUE`` line per argument.

    Raises:
        BundleContractError: a value is empty or holds characters the shell would split or
            interpret (the message names the argument and its value).
    """
    for name, value in args.items():
        if not _PLAIN_VALUE.match(value):
            raise BundleContractError(
                f"build argument {name}={value!r} of the serving image cannot be written to"
                f" {BUILD_ARGS_FILE}: expected a non-empty value of letters, digits and"
                " '_.:/@+=-' (no spaces or quotes)"
            )
    return "".join(f"--build-arg={name}={value}\n" for name, value in args.items())
