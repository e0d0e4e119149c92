"""docs/quickstart.md, docs/serving.md and docs/notebook_workflow.md, executed: every command
line of their shell blocks, top to bottom, in the order written, in a temporary copy of the
project, on small simulated data.

Each line runs in its own ``bash`` in the copy (``git ls-files`` of the checkout) with the
project's venv first on PATH and none of the test-only variables (no ``MLFLOW_TRACKING_URI``:
the page promises the store next to the project). A line that fails fails the test with its
output. Servers (the MLflow UI, kedro-viz, JupyterLab, the app) start in the background on free
ports and are stopped by the id of the process the test started (``tests/docs/docrun.py``);
``BROWSER=true`` makes the ones that open a browser tab run ``true`` instead. The copy is a
git repository, as a clone is. After
selected lines the test checks what the page promises there: files, and the keys of the JSON
that ``curl`` and continuous training print.

What the test changes is listed per page in its `Page`, each in one place: the copy's
parameters are the small ones of ``tests/notebooks/small_project.py`` (12 months, ~800
customers); ``substitutions`` shrink the sizes a few scenario lines ask for (and move /tmp
paths into the test's folder); documented ports move to free ones (``SERVERS``, ``docrun``);
``not_run`` lists the lines that do not run here, with the reason; ``replaced`` the lines run
in another form, with the reason. Times are in the docstrings of the two slow tests.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.docs.doccheck import shell_lines
from tests.docs.docrun import (
    DocRunner,
    Server,
    json_keys,
    parse_json,
    reader_env,
    summary,
    without_comment,
)
from tests.notebooks.small_project import shrink_parameters

VENV_BIN = Path(sys.executable).parent
#: Variables of the test process a reader does not have.
TEST_ONLY = ("MLFLOW_TRACKING_URI", "KEDRO_LOGGING_CONFIG", "PYTEST_CURRENT_TEST", "PYTHONPATH")
REINSTALL = (
    "pip-installs into .venv; the copy shares the project's venv, which has every extra, and"
    " must not repoint it at the temporary copy"
)


@dataclass(frozen=True)
class Page:
    """A page to execute and what the test changes or checks there (lines without comments).

    Attributes:
        path: The Markdown page.
        not_run: Lines that do not run here, with the reason.
        replaced: Lines run in another form: ``line -> (what runs, why)``.
        substitutions: Text replaced in every line (sizes too large for a test, paths
            outside the temporary folder; ``{tmp}`` is the test's temporary folder).
        files: Files (globs, relative to the copy) the page promises after a line.
        keys: JSON keys the page promises in what a line prints, by a text the line contains.
    """

    path: Path
    not_run: dict[str, str] = field(default_factory=dict)
    replaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    keys: dict[str, set[str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The page's command lines as written (a quoted string's new lines kept)."""
        return list(shell_lines(self.path.read_text("utf-8")))

    def names(self) -> list[str]:
        """The page's command lines as the tables name them (see ``without_comment``)."""
        return [without_comment(line) for line in self.lines()]


QUICKSTART = Page(
    PROJECT_ROOT / "docs" / "quickstart.md",
    not_run={
        "make test": "the whole test suite, of which this test is a part",
        "make install-dev": REINSTALL,
        "kedro jupyter lab": "an interactive server for a browser; tests/notebooks runs every"
        " notebook as a user opens them",
        "source .venv/bin/activate": "each line runs in its own shell with the venv's bin/"
        " first on PATH, which is what activating does",
    },
    replaced={
        "make run": ("kedro run", f"`make run` = pip install -e . + `kedro run`: {REINSTALL}"),
    },
    substitutions={
        "simulation.population.initial_customers=20000": (
            "simulation.population.initial_customers=1000"
        ),
        "simulation.events.volume_multiplier=10": "simulation.events.volume_multiplier=2",
        # The small simulation has 12 months (small_project.py): the drift starts inside it.
        "simulation.scenario.start_month=18": "simulation.scenario.start_month=8",
    },
    files={
        "kedro run": [
            "data/01_raw/events.parquet",
            "data/03_primary/customers_primary.parquet",
            "data/05_model_input/model_input_table.parquet",
            "data/06_models/trained_model.joblib/*",
            "data/08_reporting/model_card.md",
            "data/08_reporting/promotion_decision.json",
            "mlflow.db",
        ],
        "kedro run --pipelines export": ["dist/churn_model-v*/manifest.json"],
        "kedro run --pipelines monitoring": [
            "data/08_reporting/monitoring/diagnosis.md",
            "data/08_reporting/monitoring/retrain_decision.json",
        ],
    },
    keys={
        "curl -s http://127.0.0.1:8000/health/ready": {"status"},
        "/v1/predict": {"probability", "label", "model_version", "request_id"},
        # Each id is found (probability, label, freshness) or not_found, as the page says.
        "/v1/customers/predict": {"customer_id", "status", "model_version", "online_store"},
        "python -m churn_mlops.orchestration.continuous_training": {
            "action",
            "decision_retrain",
            "reasons",
            "champion_before",
        },
    },
)
SERVING = Page(
    PROJECT_ROOT / "docs" / "serving.md",
    not_run={
        'pip install -e ".[serving]"': REINSTALL,
        **dict.fromkeys(
            [
                "python -m venv /opt/churn-venv",
                "/opt/churn-venv/bin/pip install --no-index --find-links"
                " dist/churn_model-v1/wheelhouse --require-hashes -r"
                " dist/churn_model-v1/requirements.txt",
                "/opt/churn-venv/bin/pip install --no-index --no-deps"
                " dist/churn_model-v1/wheelhouse/churn_mlops-*.whl",
                "CHURN_MODEL_DIR=dist/churn_model-v1 CHURN_JWT_KEY_FILE=/etc/churn/jwt.pem"
                " CHURN_JWT_ALGORITHM=RS256 /opt/churn-venv/bin/python -I -m churn_mlops.serving",
            ],
            "needs an exported bundle and an RS256 key; the export's parity gate runs these"
            " steps on every export (tests/pipelines/export)",
        ),
        **dict.fromkeys(
            [
                "export CHURN_JWKS_URL=https://idp.example.com/realms/churn/protocol/"
                "openid-connect/certs",
                "export CHURN_JWT_ALGORITHM=RS256 CHURN_JWT_ISSUER=https://idp.example.com/"
                "realms/churn",
                "export CHURN_JWT_AUDIENCE=churn-serving",
                "TOKEN=$(curl -s https://idp.example.com/realms/churn/protocol/openid-connect/"
                "token -d grant_type=client_credentials -d client_id=crm -d"
                ' client_secret="$CRM_SECRET" -d scope=predict | python -c "import json,sys;'
                " print(json.load(sys.stdin)['access_token'])\")",
            ],
            "an identity provider instead of CHURN_JWT_KEY: example.com is not reachable"
            " (tests/serving test JWKS against a local key server)",
        ),
    },
    substitutions={"/tmp/": "{tmp}/"},
    files={
        "python -m churn_mlops.release.demo dist/demo-bundle": ["dist/demo-bundle/manifest.json"]
    },
    keys={
        "/v1/predict": {"predictions", "probability", "label", "model_version", "request_id"},
        "/v1/explain": {"explanations", "contributions", "base_value"},
        "/health/live": {"status"},
        "/health/ready": {"status", "model_version"},
        "/v1/admin/reload": {"state", "model_version", "requested_dir"},
        "https://127.0.0.1:8000/health/ready": {"status", "model_version"},
    },
)
NESTED_SUITE = (
    "tests of this suite, which runs them once; a pytest inside the copy would run them again"
)
NOTEBOOK_WORKFLOW = Page(
    PROJECT_ROOT / "docs" / "notebook_workflow.md",
    not_run={
        ".venv/bin/pytest tests/pipelines/feature_engineering -q": NESTED_SUITE,
        ".venv/bin/pytest tests/notebooks": NESTED_SUITE,
        '.venv/bin/pytest tests/notebooks -m "not slow"': NESTED_SUITE,
    },
    substitutions={"/tmp/": "{tmp}/", "/path/to/churn-mlops": "{tmp}/project"},
    files={
        ".venv/bin/kedro run": ["mlflow.db", "data/08_reporting/promotion_decision.json"],
        # The kernel that loads the project, in JUPYTER_DATA_DIR (next to the copy: run_in_copy).
        ".venv/bin/kedro jupyter lab": ["../jupyter/kernels/kedro_churn_mlops/kernel.json"],
        ".venv/bin/kedro viz build": ["build/index.html"],
        ".venv/bin/nbstripout --install": [".git/config"],
    },
)
PAGES = (QUICKSTART, SERVING, NOTEBOOK_WORKFLOW)
#: Servers only looked at in a browser: stopped as soon as they answer.
LOOK = {"keeps_running": False}
SERVERS = (
    Server(r"^kedro mlflow ui", 5000, "/", lambda line, port: f"{line} --port {port}", **LOOK),
    Server(r"^mlflow ui", 5000, "/", lambda line, port: f"{line} --port {port}", **LOOK),
    Server(r"^make viz", 4141, "/api/main", lambda line, port: f"{line} VIZ_PORT={port}", **LOOK),
    Server(r"kedro viz run", 4141, "/api/main", lambda line, port: f"{line} --port {port}", **LOOK),
    # JupyterLab without a token: the readiness check lists the kernels it offers. Jupyter
    # refuses to start as root without --allow-root; CI containers run as root, readers not.
    Server(
        r"kedro jupyter lab$",
        8888,
        "/api/kernelspecs",
        lambda line, port: (
            f"{line} --port {port} --IdentityProvider.token=''"
            + (" --allow-root" if os.geteuid() == 0 else "")
        ),
        **LOOK,
    ),
    Server(
        r"python -m churn_mlops.serving$",
        8000,
        "/health/ready",
        lambda line, port: f"CHURN_PORT={port} {line}",
        tls_marker="CHURN_SSL_CERTFILE",
    ),
)


def children_cpu_s() -> float:
    """CPU seconds of this process's finished child processes (the documented commands)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def copy_project(destination: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) in ``destination``, with the
    project's venv linked at ``.venv``, the small parameters and a git repository."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / ".venv").symlink_to(VENV_BIN.parent)
    shrink_parameters(destination)
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    return destination


def check_promises(runner: DocRunner, page: Page, line: str, output: str) -> None:
    """The files and JSON keys ``page`` promises after ``line``."""
    for pattern in page.files.get(line, []):
        assert list(runner.cwd.glob(pattern)), f"after `{line}` the page promises {pattern}"
    for marker, keys in page.keys.items():
        if marker in line:
            missing = keys - json_keys(parse_json(output, line))
            assert not missing, f"`{line}` printed no {sorted(missing)}:\n{output[:2000]}"


def run_page(runner: DocRunner, page: Page, tmp: Path) -> None:
    """Every command line of ``page``, in order, through ``runner``."""
    for line, name in zip(page.lines(), page.names(), strict=True):
        if name in page.not_run:
            runner.skip(line, page.not_run[name])
            continue
        command = page.replaced.get(name, (line, ""))[0]
        for text, instead in page.substitutions.items():
            command = command.replace(text, instead.format(tmp=tmp))
        step = runner.run(command)
        check_promises(runner, page, without_comment(command), step.output)


def run_in_copy(page: Page, tmp_path: Path) -> None:
    """``page`` executed in a fresh copy of the project; a timing per line is printed."""
    project = copy_project(tmp_path / "project")
    env = reader_env(
        VENV_BIN,
        TEST_ONLY,
        {
            # A fresh clone's editable install is the clone: here, the copy's src/.
            "PYTHONPATH": str(project / "src"),
            # The export's wheel cache, shared with tests/pipelines/export (catalog_export.yml).
            "CHURN_WHEEL_CACHE_DIR": str(PROJECT_ROOT / "dist" / ".wheel-cache"),
            # Servers that open a browser tab (kedro viz run, Jupyter) run `true` instead.
            "BROWSER": "true",
            # `kedro jupyter lab` installs the project's kernel here, not in the home folder.
            "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
        },
    )
    runner = DocRunner(cwd=project, env=env, servers=SERVERS, log_dir=tmp_path)
    started, cpu = time.perf_counter(), children_cpu_s()
    try:
        run_page(runner, page, tmp_path)
    finally:
        runner.stop_all()
        sys.stdout.write("\n".join(summary(runner.steps)) + "\n")
        sys.stdout.write(
            f"{page.path.name}: {time.perf_counter() - started:.0f} s wall,"
            f" {children_cpu_s() - cpu:.0f} s CPU of the commands, load {os.getloadavg()}\n"
        )


@pytest.mark.parametrize("page", PAGES, ids=[page.path.name for page in PAGES])
def test_every_listed_line_is_on_the_page(page: Page) -> None:
    lines = page.names()
    targets = [command for command, _ in page.replaced.values()]
    stale = [line for line in [*page.not_run, *page.replaced] if line not in lines]
    stale += [line for line in page.files if line not in lines + targets]
    stale += [
        text
        for text in [*page.substitutions, *page.keys]
        if not any(text in line for line in lines)
    ]
    assert not stale, f"listed in the test but not on {page.path.name}: {stale}"


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    """Every command of docs/quickstart.md, in order.

    Measured (``-s`` prints a time per line) on the shared 2-core development machine, far
    over the ~4 minutes aimed at: one uninterrupted run took 717 s wall at a load average of
    1.4-4.5, 591 s CPU of the commands (about 30 ``kedro``/``python`` processes at 10-40 s
    each, imports and MLflow included; each MLflow UI about 45 s to answer). At a load of
    6-20 sections 1-3 alone took 1,740 s.
    """
    run_in_copy(QUICKSTART, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_serving_page_runs_as_written(tmp_path: Path) -> None:
    """Every command of docs/serving.md, in order, on the demo bundles it builds.

    Measured (``-s`` prints a time per line) on the shared 2-core development machine: 14-23 s
    wall at a load average of 1.4-4 (16 s CPU of the commands), 164 s at a load of 15; the
    two demo bundles are most of it.
    """
    run_in_copy(SERVING, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_notebook_workflow_page_runs_as_written(tmp_path: Path) -> None:
    """Every command of docs/notebook_workflow.md, in order: the run the notebooks read,
    JupyterLab in the checkout and in the small sandbox, kedro-viz (served and built), the
    picture update through headless Chromium and the nbstripout filter.

    Measured (``-s`` prints a time per line) on the 2-core development machine at a load
    average of about 1: 182 s wall, 119 s CPU of the commands; the picture update (headless
    Chromium) 40 s, the sandbox build 24 s, each server 9-14 s to answer.
    """
    run_in_copy(NOTEBOOK_WORKFLOW, tmp_path)
