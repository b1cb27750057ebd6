"""Prefect artifacts of a pipeline run: the grid's test metrics as a table, a markdown summary, the findings.

They belong to the top-level flow run: the ``mrirecon-pipeline`` run when evaluation runs as its subflow
(``mrirecon run``, a deployment), the ``evaluate`` run itself when it runs alone (``dvc repro``, ``mrirecon
evaluate``). Prefect files an artifact under the flow run of the context that creates it, which for a subflow is
the subflow's run, so the top-level run is named explicitly.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect import task
from prefect.artifacts import MarkdownArtifact, TableArtifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from mrirecon.evaluation.report import PointResult
from mrirecon.evaluation.tables import findings_markdown, grid_rows, summary_markdown


def top_flow_run_id() -> UUID | None:
    """The flow run at the top of the current run's tree (the current flow run when it has no parent), None
    outside a run."""
    root = flow_run.root_flow_run_id
    return UUID(str(root)) if root else None


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts_task(report: dict, results: list[PointResult], reports: Path, kind: str) -> UUID | None:
    """Create the ``mrirecon-grid-<kind>`` table and ``mrirecon-summary-<kind>`` markdown artifacts
    (benchmark table with the best configuration per intensity, baselines, which grid points overfit,
    figure paths) and, when the report has findings, the ``mrirecon-findings-<kind>`` markdown artifact (best
    configuration per intensity, effect of each grid axis with its 95% CI); see :mod:`mrirecon.evaluation.tables`.

    Returns:
        the id of the flow run they belong to (:func:`top_flow_run_id`).
    """
    target = top_flow_run_id()
    TableArtifact(
        table=grid_rows(report, results),
        key=f"mrirecon-grid-{kind}",
        description="Test metrics of every grid point",
        flow_run_id=target,
    ).create()
    MarkdownArtifact(
        markdown=summary_markdown(report, results, reports),
        key=f"mrirecon-summary-{kind}",
        description="Best model per intensity",
        flow_run_id=target,
    ).create()
    findings = findings_markdown(report)
    if findings:
        MarkdownArtifact(
            markdown="# mrirecon: findings\n\n" + findings,
            key=f"mrirecon-findings-{kind}",
            description="Effect of depth, batch size and epochs; best configuration per intensity",
            flow_run_id=target,
        ).create()
    return target
