"""Prefect artifacts of a pipeline run: the grid's test metrics as a table, a markdown summary, the findings."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mrirecon.evaluation.report import PointResult
from mrirecon.evaluation.tables import findings_markdown, grid_rows, summary_markdown


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts_task(report: dict, results: list[PointResult], reports: Path, kind: str) -> None:
    """Create the ``mrirecon-grid-<kind>`` table and ``mrirecon-summary-<kind>`` markdown artifacts
    (benchmark table with the best configuration per intensity, baselines, which grid points overfit,
    figure paths) and, when the report has findings, the ``mrirecon-findings-<kind>`` markdown artifact (best
    configuration per intensity, effect of each grid axis with its 95% CI); see :mod:`mrirecon.evaluation.tables`."""
    create_table_artifact(
        grid_rows(report, results), key=f"mrirecon-grid-{kind}", description="Test metrics of every grid point"
    )
    create_markdown_artifact(
        summary_markdown(report, results, reports),
        key=f"mrirecon-summary-{kind}",
        description="Best model per intensity",
    )
    findings = findings_markdown(report)
    if findings:
        create_markdown_artifact(
            "# mrirecon: findings\n\n" + findings,
            key=f"mrirecon-findings-{kind}",
            description="Effect of depth, batch size and epochs; best configuration per intensity",
        )
