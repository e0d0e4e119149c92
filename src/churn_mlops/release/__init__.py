"""Release tools: everything that turns a registered model into something to ship.

Build and release code, apart from the runtime: the export pipeline
(``churn_mlops.pipelines.export``) decides *what* goes into a serving bundle; the modules here
do the I/O that turns that decision into a folder, an image or manifests:

* :mod:`.requirements` pins a dependency closure at the installed versions with
  ``uv pip compile`` (installed versions as constraints, local wheels only, hashes);
* :mod:`.wheelhouse` fetches those wheels (cache first, then the package index), has uv
  resolve and hash them in the wheelhouse, and builds the project's own wheel reproducibly;
* :mod:`.parity` installs the bundle into a fresh virtual environment, starts its app and
  compares its answers with the golden sample;
* :mod:`.bundle` builds a serving bundle from the export pipeline's description (wheels,
  hashed requirements, k8s/, parity gate, manifest.json, atomic rename);
* :mod:`.onnx_model` converts the fitted Pipeline to ONNX (preprocessing and estimator
  composed) and writes the explainer files;
* :mod:`.serving_image` derives the build arguments of the static serving Dockerfile
  (``deploy/docker/serving/Dockerfile``, copied into every bundle; pure, used by a node);
* :mod:`.deploy` renders the Kubernetes tree for an image (``python -m
  churn_mlops.release.deploy``);
* :mod:`.pipelines_image` builds the pipelines image the Kubernetes Jobs run;
* :mod:`.demo` builds a demo bundle from synthetic rows that follow the feature contract
  (``python -m churn_mlops.release.demo``), for trying the app, its tests and benchmarks.
"""

from __future__ import annotations
