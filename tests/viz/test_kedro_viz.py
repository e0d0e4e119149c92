"""kedro-viz shows every pipeline with layers in flow order, tags and readable node names.

The catalog check reads conf/base directly. The other tests start the real ``kedro viz run``
on 127.0.0.1 in a project copy and read its API; the browser test opens it in headless
Chromium, checks the rendered graph and takes a screenshot. Set ``CHURN_UPDATE_DOCS_IMAGES=1``
to also write that screenshot to docs/images/kedro_viz_training.png.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, kedro_env, make_project_copy
from tests.tools import tool

# Kedro's data-layer convention, in flow order (docs/architecture.md).
LAYERS = (
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
)
READABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SCREENSHOT_PIPELINE = "training"
DOCS_IMAGE = PROJECT_ROOT / "docs" / "images" / "kedro_viz_training.png"
STARTUP_TIMEOUT_S = 240


def project_pipelines() -> dict[str, list[str]]:
    """Node names of every pipeline package (``find_pipelines`` registers each folder)."""
    import churn_mlops.pipelines

    folder = Path(churn_mlops.pipelines.__file__).parent
    names = {}
    for path in sorted(folder.glob("*/pipeline.py")):
        module = importlib.import_module(f"churn_mlops.pipelines.{path.parent.name}")
        names[path.parent.name] = [node.name for node in module.create_pipeline().nodes]
    return names


def catalog_entries() -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("catalog*.yml")):
        for name, entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if not name.startswith("_"):  # YAML anchors / templates
                entries[name] = {**entry, "_file": path.name}
    return entries


def test_every_catalog_entry_has_a_kedro_viz_layer() -> None:
    missing = {
        name: entry["_file"]
        for name, entry in catalog_entries().items()
        if (entry.get("metadata") or {}).get("kedro-viz", {}).get("layer") not in LAYERS
    }
    assert not missing, f"entries without a kedro-viz layer from {LAYERS}: {missing}"


# --------------------------------------------------------------------------- the viz server


def _free_port() -> int:
    """A free port below 49152: kedro viz refuses ports in the ephemeral range."""
    for port in random.Random().sample(range(20000, 49000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 49000 on 127.0.0.1")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def viz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of ``kedro viz run`` serving a copy of the project on 127.0.0.1."""
    project = make_project_copy(tmp_path_factory.mktemp("viz") / "project")
    port = _free_port()
    log = (project / "viz.log").open("w", encoding="utf-8")
    kedro = Path(sys.executable).with_name("kedro")
    # Its own process group: kedro viz serves from a child process, and both must stop.
    proc = subprocess.Popen(
        [str(kedro), "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"],
        cwd=project,
        env=kedro_env(project),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kedro viz run exited with {proc.returncode}:\n{_tail(project)}")
            try:
                _get_json(f"{url}/api/main")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                # The server runs in a child process; its crash leaves the parent waiting.
                if "Traceback (most recent call last)" in _tail(project):
                    pytest.fail(f"kedro viz run failed:\n{_tail(project)}")
                if time.monotonic() > deadline:
                    pytest.fail(f"kedro viz run did not answer in time:\n{_tail(project)}")
                time.sleep(1)
        yield url
    finally:
        _stop(proc)
        log.close()


def _tail(project: Path) -> str:
    return (project / "viz.log").read_text(encoding="utf-8", errors="replace")[-4000:]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def served(viz_url: str) -> dict[str, dict[str, Any]]:
    """The graph kedro-viz serves for every registered pipeline, by pipeline id."""
    ids = [p["id"] for p in _get_json(f"{viz_url}/api/main")["pipelines"]]
    return {pid: _get_json(f"{viz_url}/api/pipelines/{pid}") for pid in ids}


@pytest.mark.slow
def test_every_pipeline_is_served_with_its_readable_node_names(
    served: dict[str, dict[str, Any]],
) -> None:
    expected = project_pipelines()
    assert set(served) == {*expected, "__default__"}
    for pipeline_id, node_names in expected.items():
        tasks = [n["name"] for n in served[pipeline_id]["nodes"] if n["type"] == "task"]
        assert sorted(tasks) == sorted(node_names), pipeline_id
        unreadable = [name for name in tasks if not READABLE_NAME.match(name)]
        assert not unreadable, f"{pipeline_id}: nodes without a readable name= {unreadable}"
        assert len(set(tasks)) == len(tasks), f"{pipeline_id}: duplicate node names"


@pytest.mark.slow
def test_every_pipeline_shows_layers_in_flow_order(served: dict[str, dict[str, Any]]) -> None:
    declared = {name.split("@")[0] for name in catalog_entries()}
    for pipeline_id, graph in served.items():
        # kedro-viz drops all layer bands when the layers form a cycle.
        assert graph["layers"], f"{pipeline_id}: kedro-viz shows no layers (a layer cycle?)"
        nodes = {n["id"]: n for n in graph["nodes"]}
        unlayered = [
            n["name"]
            for n in nodes.values()
            if n["type"] == "data" and n["name"] in declared and not n.get("layer")
        ]
        assert not unlayered, f"{pipeline_id}: catalog datasets shown without a layer {unlayered}"
        assert not _layers_against_the_flow(nodes, graph["edges"]), pipeline_id


def _layers_against_the_flow(
    nodes: dict[str, dict[str, Any]], edges: list[dict[str, str]]
) -> list[tuple[str, str, str, str]]:
    """(dataset, layer, downstream dataset, earlier layer) pairs that break the flow order."""
    children = defaultdict(set)
    for edge in edges:
        children[edge["source"]].add(edge["target"])
    wrong = []
    for node_id, node in nodes.items():
        if not node.get("layer"):
            continue
        seen: set[str] = set()
        stack = list(children[node_id])
        while stack:
            child = stack.pop()
            if child in seen:
                continue
            seen.add(child)
            layer = nodes[child].get("layer")
            if layer and LAYERS.index(layer) < LAYERS.index(node["layer"]):
                wrong.append((node["name"], node["layer"], nodes[child]["name"], layer))
            stack.extend(children[child])
    return wrong


@pytest.mark.slow
def test_every_node_is_tagged(served: dict[str, dict[str, Any]]) -> None:
    for pipeline_id, graph in served.items():
        assert graph["tags"], f"{pipeline_id}: no tags"
        untagged = [n["name"] for n in graph["nodes"] if n["type"] == "task" and not n["tags"]]
        assert not untagged, f"{pipeline_id}: untagged nodes {untagged}"


# --------------------------------------------------------------------------- the browser


@pytest.mark.slow
@pytest.mark.browser
def test_browser_renders_the_training_graph(viz_url: str, tmp_path: Path) -> None:
    chromium = tool("chromium", "apt: chromium")
    chromedriver = tool("chromedriver", "apt: chromium-driver")
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1600,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.get(viz_url)
        # Raw node names and no feature-hint tour over the graph (kedro-viz UI settings).
        driver.execute_script(
            "window.localStorage.setItem('KedroViz', JSON.stringify("
            "{showFeatureHints: false, isPrettyName: false}))"
        )
        driver.get(f"{viz_url}/?pid={SCREENSHOT_PIPELINE}")
        WebDriverWait(driver, 120).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "g.pipeline-node text")
        )
        time.sleep(2)  # let the layout animation settle before the screenshot
        for button in driver.find_elements(By.XPATH, "//*[normalize-space(text())='Dismiss']"):
            # The "new version" reminder (kedro-viz cannot reach the network to check).
            driver.execute_script("arguments[0].click()", button)
        drawn = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "g.pipeline-node text")}
        bands = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".pipeline-layer-name")]
        screenshot = tmp_path / "kedro_viz_training.png"
        assert driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()

    expected = set(project_pipelines()[SCREENSHOT_PIPELINE])
    assert expected <= drawn, f"nodes missing from the drawn graph: {expected - drawn}"
    assert {"model_input", "models", "reporting"} <= set(bands)
    with Image.open(screenshot) as image:
        assert image.size[0] >= 1200
        # A drawn graph has many distinct colours; an empty or error page has a handful.
        colours = image.convert("RGB").getcolors(maxcolors=image.width * image.height)
        assert len(colours) > 50
    if os.environ.get("CHURN_UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, DOCS_IMAGE)
