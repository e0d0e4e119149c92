"""Every reference in README.md and docs/ resolves against the real project.

Links and anchors resolve; every ``kedro`` subcommand and option exists; every pipeline after
``--pipeline``/``--pipelines`` is registered; every ``--params`` key is a parameter; every
``make`` target is in the Makefile; every ``python -m`` module imports; every repository path
in backticks exists (the checks are in ``tests/docs/doccheck.py``). The last tests feed the
checker broken snippets, so a checker that stopped finding problems fails too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.docs.doccheck import Facts, anchors, check_markdown, load_facts, shell_commands

DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]
# Pages the README and docs/index.md must list (docs/index.md lists every page).
REQUIRED_PAGES = {
    "architecture.md",
    "quickstart.md",
    "glossary.md",
    "data_model.md",
    "bring_your_own_data.md",
    "experiment_tracking.md",
    "handoff.md",
}
# Paths the docs tell the reader to create: the bring-your-own-data environment.
USER_CREATED = ("conf/mydata/",)


@pytest.fixture(scope="module")
def facts() -> Facts:
    """The project's pipelines, commands, Makefile targets and parameters, loaded once."""
    return load_facts(PROJECT_ROOT, user_created=USER_CREATED)


@pytest.mark.parametrize(
    "doc", DOCUMENTS, ids=[str(d.relative_to(PROJECT_ROOT)) for d in DOCUMENTS]
)
def test_every_reference_in_the_docs_resolves(doc: Path, facts: Facts) -> None:
    problems = check_markdown(doc, doc.read_text(encoding="utf-8"), facts)
    assert not problems, f"{doc.relative_to(PROJECT_ROOT)}:\n  " + "\n  ".join(problems)


def test_index_lists_every_page() -> None:
    index = PROJECT_ROOT / "docs" / "index.md"
    text = index.read_text(encoding="utf-8")
    pages = sorted(d for d in DOCUMENTS if d.parent != PROJECT_ROOT and d != index)
    missing = [
        str(p.relative_to(index.parent))
        for p in pages
        if f"({p.relative_to(index.parent)})" not in text
    ]
    assert not missing, f"docs/index.md does not link {missing}"
    assert REQUIRED_PAGES <= {p.name for p in pages}


def test_architecture_page_shows_the_flow_picture() -> None:
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "](images/architecture.png)" in text.split("\n## ", 1)[0]
    assert (PROJECT_ROOT / "docs" / "images" / "architecture.png").stat().st_size > 10_000


# ------------------------------------------------------------------ the checker finds breakage

DOC = PROJECT_ROOT / "docs" / "snippet.md"


def problems_in(snippet: str, facts: Facts) -> list[str]:
    return check_markdown(DOC, snippet, facts)


def test_a_correct_snippet_has_no_problems(facts: Facts) -> None:
    snippet = """
# Title

See [the architecture](architecture.md#pipelines) and [below](#title),
![flow](images/architecture.png).

```bash
.venv/bin/kedro run --pipeline training --params "training.candidates.xgboost.search.n_trials=3"
kedro run --pipelines data_processing,feature_engineering --env spark
kedro models promote 3 --force --reason "ok"
make run && make test
KEDRO_ENV=x python -m churn_mlops.orchestration.continuous_training --dry-run \\
    --params monitoring.window.months=2
python benchmarks/features.py
```

Run `kedro run --pipeline monitoring`; settings are in `conf/base/parameters_training.yml`.
"""
    problems = problems_in(snippet, facts)
    assert problems == [], problems


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("See [the page](no_such_page.md).", "link to missing no_such_page.md"),
        ("See [it](architecture.md#no-such-heading).", "missing heading"),
        ("![flow](images/missing.png)", "link to missing images/missing.png"),
        ("```bash\nkedro run --pipeline trainig\n```", "pipeline 'trainig' is not registered"),
        ("Run `kedro run --pipelines training,evalution`.", "pipeline 'evalution'"),
        ("```bash\nkedro modles list\n```", "has no subcommand 'modles'"),
        ("```bash\nkedro models demote 3\n```", "has no subcommand 'demote'"),
        ("```bash\nkedro run --pipline training\n```", "has no option --pipline"),
        ("```bash\nmake deploy\n```", "make target 'deploy' is not in the Makefile"),
        (
            '```bash\nkedro run --params "simulation.scenario.nmae=age_shift"\n```',
            "--params key 'simulation.scenario.nmae'",
        ),
        (
            "```bash\npython -m churn_mlops.orchestration.continuous_training --dryrun\n```",
            "has no option --dryrun",
        ),
        ("```bash\npython -m churn_mlops.no_such_module\n```", "does not import"),
        ("```bash\npython -m churn_mlops.pipelines\n```", "no __main__"),
        ("```bash\npython benchmarks/no_such_benchmark.py\n```", "does not exist"),
        (
            "Parameters live in `conf/base/parameters_trainig.yml`.",
            "conf/base/parameters_trainig.yml",
        ),
        ("```console\n$ kedro viz rnu\nkedro viz rnu is output\n```", "no subcommand 'rnu'"),
    ],
)
def test_the_checker_finds_a_broken_reference(snippet: str, expected: str, facts: Facts) -> None:
    problems = problems_in(snippet, facts)
    assert any(expected in p for p in problems), problems


def test_shell_parsing_splits_pipes_and_skips_output_and_placeholders(facts: Facts) -> None:
    text = "```console\n$ make run | tee log\nmake nonsense\n```\n"
    assert [c[0] for c in shell_commands(text)] == ["make", "tee"]
    # Placeholders are not names: `kedro run --pipeline <name>` and `conf/<env>/` pass.
    assert (
        problems_in("Use `kedro run --pipeline <name>` and `conf/<env>/mlflow.yml`.", facts) == []
    )


def test_heading_anchors_follow_github() -> None:
    text = (
        "# Serving bundle (`dist/<model_name>-v<version>/`)\n## Runs\n## Runs\n"
        "```bash\n# not a heading\n```\n"
    )
    assert anchors(text) == {"serving-bundle-distmodel_name-vversion", "runs", "runs-1"}
