"""The serving bundle's ``Dockerfile`` (a pure function of the container parameters).

Two stages from the same ``BASE_IMAGE``: the first creates a virtual environment and installs
``requirements.txt`` from the bundle's ``wheelhouse/`` with ``--no-index --require-hashes``
(no network during the build), then the project wheel with ``--no-deps``; the second copies
only that environment and the model files, so the wheelhouse never ends up in the image.
The app runs as a non-root user, binds ``0.0.0.0:<port>`` and reports its health through a
``HEALTHCHECK`` written in Python (slim images have no curl) that follows the TLS setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

#: The health probe: GET /health/ready over HTTP or, when a certificate is configured, HTTPS
#: (the container's own certificate is not verified: it is the container talking to itself).
HEALTHCHECK_SCRIPT = (
    "import os,ssl,urllib.request as u;"
    "t=bool(os.environ.get('CHURN_SSL_CERTFILE'));"
    "u.urlopen(('https' if t else 'http')+'://127.0.0.1:'+os.environ.get('CHURN_PORT','{port}')"
    "+'/health/ready',timeout=3,context=ssl._create_unverified_context() if t else None)"
)


def render_dockerfile(
    *,
    base_image: str,
    uid: int,
    port: int,
    model_dir: str,
    prediction_log_dir: str,
    labels: Mapping[str, str],
    healthcheck: Mapping[str, int],
    reload_root: str | None = None,
) -> str:
    """The text of the bundle's ``Dockerfile``.

    Args:
        base_image: Default of the ``BASE_IMAGE`` build argument (a Python 3 image with
            ``venv``; ``python:3.11-slim``).
        uid: User and group id the app runs as (the Kubernetes pods force the same).
        port: Port the app listens on (``CHURN_PORT``).
        model_dir: Where the bundle's model files go in the image (``CHURN_MODEL_DIR``).
        prediction_log_dir: Default ``CHURN_PREDICTION_LOG_DIR``, writable by the user.
        labels: OCI image labels (model name, version, run id...).
        healthcheck: ``interval_s``, ``timeout_s``, ``start_period_s`` and ``retries``.
        reload_root: ``CHURN_RELOAD_ROOT``, the only folder admin hot reloads may load
            bundles from; default: the folder holding ``model_dir`` (``/opt/churn``), so the
            image confines reloads to bundles inside it like the k8s manifests do.
    """
    label_lines = " \\\n      ".join(
        f'{key}="{str(value).replace(chr(34), "")}"' for key, value in sorted(labels.items())
    )
    root = reload_root or PurePosixPath(model_dir).parent.as_posix()
    probe = HEALTHCHECK_SCRIPT.replace("{port}", str(port))
    return f"""\
# Serving image of one exported churn model. Build from the bundle folder, no network needed:
#   docker build -t churn-serving:<tag> .
#   docker build --build-arg BASE_IMAGE=<your python 3.11 image> -t churn-serving:<tag> .
# Every CHURN_* variable of the app can be set with `docker run -e` (docs/handoff.md).
ARG BASE_IMAGE={base_image}

FROM ${{BASE_IMAGE}} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.txt /tmp/bundle/requirements.txt
COPY wheelhouse/ /tmp/bundle/wheelhouse/
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-index --find-links /tmp/bundle/wheelhouse \\
      --require-hashes -r /tmp/bundle/requirements.txt \\
 && /opt/venv/bin/pip install --no-index --no-deps /tmp/bundle/wheelhouse/churn_mlops-*.whl

FROM ${{BASE_IMAGE}}
LABEL {label_lines}
ENV PATH=/opt/venv/bin:$PATH \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    HOME=/tmp \\
    CHURN_MODEL_DIR={model_dir} \\
    CHURN_RELOAD_ROOT={root} \\
    CHURN_HOST=0.0.0.0 \\
    CHURN_PORT={port} \\
    CHURN_PREDICTION_LOG_DIR={prediction_log_dir}
RUN groupadd --system --gid {uid} churn \\
 && useradd --system --uid {uid} --gid {uid} --home-dir /tmp --no-create-home \\
      --shell /usr/sbin/nologin churn \\
 && mkdir -p {prediction_log_dir} \\
 && chown {uid}:{uid} {prediction_log_dir}
COPY --from=build /opt/venv /opt/venv
COPY model/ {model_dir}/model/
COPY model_metadata.json reference_profile.json model_card.md manifest.json {model_dir}/
USER {uid}:{uid}
WORKDIR /tmp
EXPOSE {port}
HEALTHCHECK --interval={healthcheck["interval_s"]}s --timeout={healthcheck["timeout_s"]}s \\
  --start-period={healthcheck["start_period_s"]}s --retries={healthcheck["retries"]} \\
  CMD ["python", "-c", "{probe}"]
CMD ["python", "-m", "churn_mlops.serving"]
"""
