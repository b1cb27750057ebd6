"""Shared pieces of the ``mrirecon`` command: the Typer app, options, project setup, and the
run wrapper that turns known errors into one-line messages and exit codes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mrirecon.ops.project import Layout, configure_environment, find_root

app = typer.Typer(
    help=(
        "Accelerated-MRI reconstruction experiments on IXI T1. The DAG is "
        "ingest -> select -> masks -> train -> evaluate; `mrirecon run` runs it all (and keeps dvc.lock in step), "
        "`dvc repro` runs the same stages through DVC."
    ),
    no_args_is_help=True,
    add_completion=False,
)

SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Data source: a directory of IXI *T1.nii.gz files, an IXI-T1.tar archive, or 'sample'. "
        "Overrides $MRIRECON_SOURCE, which overrides data.source in params.yaml.",
    ),
]


WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", help="Grid points trained at once, each in its own process (default: compute.workers)."),
]
DaskOption = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        help="Run grid points on an existing Dask cluster, e.g. tcp://host:8786 (default: compute.dask_address).",
    ),
]


def setup_project() -> Layout:
    try:
        layout = Layout(find_root())
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_environment(layout.root)
    from mrirecon.config import ParamsError, load_params

    try:
        load_params(layout.params)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    return layout


def check_source(layout: Layout, source: str | None) -> None:
    """Fail within seconds (before Prefect starts) when no data source is reachable."""
    from mrirecon.config import load_params
    from mrirecon.data.sources import SourceError, resolve_source

    try:
        resolve_source(source, load_params(layout.params).data.source, layout.raw_sample)
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def run_flow(flow_fn, **kwargs):
    """Run a flow under the project lock, turning expected failures into one-line errors."""
    from mrirecon.config import ParamsError
    from mrirecon.data.slices import SliceSelectionError
    from mrirecon.ops.runlock import RunLocked, project_lock
    from mrirecon.stages.ingest import NoUsableVolumes  # StrictRejection is a subclass

    try:
        with project_lock(find_root(), " ".join(["mrirecon", *sys.argv[1:]])):
            return flow_fn(**kwargs)
    except RunLocked as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc
    except (NoUsableVolumes, ParamsError, SliceSelectionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def short_result(result) -> str:
    if isinstance(result, dict) and "points" in result:
        return f"{len(result['points'])} grid points trained (MLflow parent run {result['parent_run_id']})"
    return str(result)


def print_results(layout: Layout) -> None:
    """The benchmark table of the test metrics (:func:`mrirecon.evaluation.tables.benchmark_rows`), the findings
    (best configuration per intensity, effect of each grid axis; :func:`~mrirecon.evaluation.tables.findings_best_rows`,
    :func:`~mrirecon.evaluation.tables.findings_effect_rows`) and where to look next."""
    from rich.console import Console
    from rich.table import Table

    from mrirecon.evaluation.overview import read_report
    from mrirecon.evaluation.tables import (
        BEST_COLUMNS,
        EFFECT_COLUMNS,
        FINDINGS_FOOTNOTE,
        LESION_COLUMNS,
        LESION_FOOTNOTE,
        SUMMARY_COLUMNS,
        benchmark_rows,
        findings_best_rows,
        findings_effect_rows,
        footnote,
        format_row,
        lesion_rows,
    )

    path = layout.reports / "metrics.json"
    if not path.exists():
        return
    report = read_report(path)
    table = Table(title="Test subjects: zero-filled, CS and the best grid point per intensity", title_justify="left")
    for column in SUMMARY_COLUMNS:
        table.add_column(column, justify="left" if column in ("k-space", "intensity", "method") else "right")
    for row in benchmark_rows(report):
        table.add_row(*format_row(row, SUMMARY_COLUMNS))
    console = Console(width=160)
    console.print(table)
    console.print(footnote(report), soft_wrap=True)
    findings = [
        ("Findings: best configuration per intensity (test subjects)", BEST_COLUMNS, findings_best_rows(report)),
        ("Findings: effect of each grid axis (paired, test subjects)", EFFECT_COLUMNS, findings_effect_rows(report)),
        ("Lesions and hallucinations (test slices with inserted lesions)", LESION_COLUMNS, lesion_rows(report)),
    ]
    for title, columns, rows in findings:
        if rows:
            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(
                    column, justify="left" if column in ("intensity", "model", "axis", "method") else "right"
                )
            for row in rows:
                table.add_row(*format_row(row, columns))
            console.print(table)
    if findings[0][2]:
        console.print(FINDINGS_FOOTNOTE, soft_wrap=True)
    if findings[2][2]:
        console.print(LESION_FOOTNOTE, soft_wrap=True)
    typer.echo(f"\nreports: {layout.reports}/ (metrics.json, grid.csv, findings.csv, figures/)")
    typer.echo(f"offline page with the figures: file://{layout.reports / 'index.html'}")
    typer.echo("MLflow and Prefect UIs: mrirecon ui  (prints the links; Ctrl-C stops them)")
