"""Draw the data flow of docs/architecture.md as docs/images/architecture.png (matplotlib only).

Run it after changing the flow: ``python docs/images/make_architecture.py`` (``--out`` writes
elsewhere). No network and no Graphviz: boxes and arrows are placed by hand below.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).with_name("architecture.png")
WIDTH, HEIGHT = 17.6, 9.4  # canvas in data units = inches
BOX_W, BOX_H = 2.75, 1.75

COLOURS = {  # fill, edge
    "data": ("#e8f1fb", "#2f6db5"),
    "model": ("#eaf6ea", "#2e7d32"),
    "ops": ("#fff3e0", "#e65100"),
    "store": ("#f2f2f2", "#616161"),
}


@dataclass(frozen=True)
class Box:
    """One stage: a monospace title and a few lines on what it does and writes."""

    x: float  # centre
    y: float  # centre
    title: str
    body: str
    kind: str
    width: float = BOX_W
    height: float = BOX_H

    @property
    def left(self) -> tuple[float, float]:
        return (self.x - self.width / 2, self.y)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.width / 2, self.y)

    @property
    def top(self) -> tuple[float, float]:
        return (self.x, self.y + self.height / 2)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x, self.y - self.height / 2)


TOP, BOTTOM, STORES = 6.75, 3.35, 0.8
MARGIN = 0.3
GAP = (WIDTH - 2 * MARGIN - 5 * BOX_W) / 4
XS = tuple(MARGIN + BOX_W / 2 + i * (BOX_W + GAP) for i in range(5))


def stage(x: float, y: float, title: str, kind: str, *lines: str) -> Box:
    """A pipeline-sized box whose body is ``lines``, one per text line."""
    return Box(x, y, title, "\n".join(lines), kind)


def store(x: float, title: str, body: str, width: float) -> Box:
    """A flat box in the bottom row for a store the stages share."""
    return Box(x, STORES, title, body, "store", width=width, height=0.85)


# fmt: off
SIMULATION = stage(
    XS[0], TOP, "simulation", "data",
    "seeded churn simulator", "(or your own tables)", "→ customers, events,",
    "   churn_records (01_raw)",
)
PROCESSING = stage(
    XS[1], TOP, "data_processing", "data",
    "validate (column, row, rule)", "→ quarantine soft failures", "→ *_primary (03_primary)",
    "   validation_report",
)
FEATURES = stage(
    XS[2], TOP, "feature_engineering", "data",
    "monthly snapshot spine ×", "point-in-time windows", "(Ibis on DuckDB / Spark)",
    "→ model_input_table",
)
TRAINING = stage(
    XS[3], TOP, "training", "model",
    "time split → baseline +", "XGBoost (Optuna search)", "→ trained_model: ONE",
    "   sklearn Pipeline",
)
EVALUATION = stage(
    XS[4], TOP, "evaluation", "model",
    "test metrics, cost threshold,", "calibration, SHAP, behaviour", "checks, reference_profile,",
    "model card → gate",
)
REGISTRY = stage(
    XS[4], BOTTOM, "MLflow registry", "model",
    "churn_model versions", "alias challenger → gate", "→ alias champion",
    "(kedro models promote|rollback)",
)
EXPORT = stage(
    XS[3], BOTTOM, "export", "model",
    "champion → dist/<model>-v<N>/", "model, Dockerfile, wheelhouse,", "k8s/, manifest.json",
    "parity gate: golden sample",
)
SERVING = stage(
    XS[2], BOTTOM, "serving (container)", "ops",
    "FastAPI: /v1/predict, explain,", "feedback, /metrics, JWT", "Kubernetes: rolling, canary,",
    "blue-green, HPA",
)
MONITORING = stage(
    XS[1], BOTTOM, "monitoring", "ops",
    "drift vs the champion's", "reference_profile: PSI, KL,", "Wasserstein, KS, chi²; labels",
    "→ diagnosis → retrain_decision",
)
CT = stage(
    XS[0], BOTTOM, "continuous training", "ops",
    "refresh data → monitoring", "→ if retrain: training +", "evaluation (gate) → export",
    "(orchestration/, a CronJob)",
)
# fmt: on
CATALOG = store((XS[0] + XS[1]) / 2, "Kedro catalog", "data/01_raw … 08_reporting  (Parquet)", 5.4)
TRACKING = store(
    (XS[3] + XS[4]) / 2, "MLflow tracking", "sqlite:///mlflow.db or $MLFLOW_TRACKING_URI", 4.9
)
PROMETHEUS = store(XS[2], "Prometheus + Grafana", "deploy/prometheus, deploy/grafana", BOX_W + 0.6)

BOXES = (
    SIMULATION,
    PROCESSING,
    FEATURES,
    TRAINING,
    EVALUATION,
    REGISTRY,
    EXPORT,
    SERVING,
    MONITORING,
    CT,
    CATALOG,
    TRACKING,
    PROMETHEUS,
)


def draw_box(ax: plt.Axes, box: Box) -> None:
    fill, edge = COLOURS[box.kind]
    ax.add_patch(
        FancyBboxPatch(
            (box.x - box.width / 2, box.y - box.height / 2),
            box.width,
            box.height,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=fill,
            edgecolor=edge,
            linewidth=1.8,
        )
    )
    small = box.height < 1
    title_y = box.y + (0.14 if small else box.height / 2 - 0.27)
    ax.text(
        box.x,
        title_y,
        box.title,
        ha="center",
        va="center",
        fontsize=12.5,
        family="DejaVu Sans Mono",
        weight="bold",
        color=edge,
    )
    ax.text(
        box.x,
        title_y - (0.3 if small else 0.24),
        box.body,
        ha="center",
        va="top",
        fontsize=9.5 if small else 10,
        linespacing=1.3,
        color="#212121",
    )


def arrow(
    ax: plt.Axes,
    start,
    end,
    *,
    label: str = "",
    colour: str = "#424242",
    dashed: bool = False,
    rad: float = 0.0,
    label_at: tuple[float, float] | None = None,
    path: list[tuple[float, float]] | None = None,
) -> None:
    style = "-|>,head_length=0.5,head_width=0.28"
    linestyle = (0, (4, 3)) if dashed else "-"
    if path:  # an elbow: straight segments, the head on the last one
        points = [start, *path, end]
        for a, b in zip(points[:-2], points[1:-1], strict=True):
            ax.plot([a[0], b[0]], [a[1], b[1]], color=colour, linewidth=2, linestyle=linestyle)
        start = points[-2]
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=14,
            color=colour,
            linewidth=2,
            linestyle=linestyle,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=2,
            shrinkB=2,
        )
    )
    if label:
        x, y = label_at or ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=9.5,
            color=colour,
            style="italic",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
        )


def draw(out: Path) -> Path:
    fig = plt.figure(figsize=(WIDTH, HEIGHT), dpi=120)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, HEIGHT)
    ax.axis("off")

    ax.text(
        0.25,
        HEIGHT - 0.35,
        "churn-mlops: from raw data to a monitored, retrained model",
        fontsize=16,
        weight="bold",
        va="center",
    )
    ax.text(
        0.25,
        HEIGHT - 0.85,
        "kedro run  (the default pipeline: simulation → data_processing → "
        "feature_engineering → training → evaluation)",
        fontsize=11.5,
        family="DejaVu Sans Mono",
        va="center",
        color="#2f6db5",
    )
    ax.text(
        0.25,
        (TOP + BOTTOM) / 2 + 0.05,
        "release and operation: kedro run --pipeline export · the container · "
        "kedro run --pipeline monitoring",
        fontsize=11,
        family="DejaVu Sans Mono",
        va="center",
        color="#e65100",
    )

    for box in BOXES:
        draw_box(ax, box)

    for a, b in (
        (SIMULATION, PROCESSING),
        (PROCESSING, FEATURES),
        (FEATURES, TRAINING),
        (TRAINING, EVALUATION),
    ):
        arrow(ax, a.right, b.left)
    arrow(
        ax,
        EVALUATION.bottom,
        REGISTRY.top,
        label="register + gate",
        label_at=(EVALUATION.x, (EVALUATION.bottom[1] + REGISTRY.top[1]) / 2),
    )

    def gap_label(a: Box, b: Box) -> tuple[float, float]:
        return ((a.left[0] + b.right[0]) / 2, BOTTOM + 0.32)

    arrow(ax, REGISTRY.left, EXPORT.right, label="@champion", label_at=gap_label(REGISTRY, EXPORT))
    arrow(ax, EXPORT.left, SERVING.right, label="bundle", label_at=gap_label(EXPORT, SERVING))
    arrow(
        ax,
        SERVING.left,
        MONITORING.right,
        label="log +\nfeedback",
        label_at=gap_label(SERVING, MONITORING),
    )
    arrow(ax, MONITORING.left, CT.right, label="decision", label_at=gap_label(MONITORING, CT))
    # The retraining loop: continuous training runs training + evaluation again.
    loop_y = (TOP - BOX_H / 2 + BOTTOM + BOX_H / 2) / 2 - 0.3
    arrow(
        ax,
        CT.top,
        (TRAINING.x - 0.5, TRAINING.bottom[1]),
        colour="#e65100",
        label="retrain: training + evaluation → gate",
        label_at=((CT.x + TRAINING.x) / 2, loop_y),
        path=[(CT.x, loop_y), (TRAINING.x - 0.5, loop_y)],
    )
    arrow(
        ax,
        SERVING.bottom,
        PROMETHEUS.top,
        colour="#616161",
        dashed=True,
        label="/metrics",
        label_at=(SERVING.x, (SERVING.bottom[1] + PROMETHEUS.top[1]) / 2),
    )

    ax.text(
        WIDTH - 0.25,
        0.12,
        "blue: data pipelines · green: model pipelines and registry · orange: operation · "
        "grey: stores · every stage reads the feature list, metadata and reference profile "
        "from churn_mlops.contracts",
        fontsize=9,
        ha="right",
        va="bottom",
        color="#616161",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, metadata={"Software": None})
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="PNG to write (default: %(default)s)")
    print(draw(parser.parse_args().out))  # noqa: T201 - a script's output


if __name__ == "__main__":
    main()
