"""Building blocks of the ``export`` pipeline that touch the outside world.

The pipeline's nodes (``churn_mlops.pipelines.export``) decide *what* goes into a serving
bundle; the modules here do the I/O that turns that decision into a folder, and are called by
:class:`churn_mlops.datasets.ServingBundleDataset` when the bundle is saved:

* :mod:`.requirements` pins the serving dependency closure from the installed environment;
* :mod:`.wheelhouse` fetches those wheels (cache first, then the package index) and builds the
  project's own wheel reproducibly;
* :mod:`.parity` installs the bundle into a fresh virtual environment, starts its app and
  compares its answers with the golden sample;
* :mod:`.dockerfile` renders the bundle's ``Dockerfile`` (pure, used by a node).
"""

from __future__ import annotations
