"""Daily-use commands: local UIs, the scheduled deployment, run comparison, the README table."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli.common import SourceOption, app, print_results, setup_project


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    prefect_port: Annotated[int, typer.Option(help="Port of the Prefect server and UI.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Start a Prefect server (UI + API, needed for schedules) and the MLflow UI; Ctrl-C stops both."""
    import signal

    from mrirecon.config import load_params
    from mrirecon.ops.services import start_mlflow_server, start_prefect_server, stop, wait_healthy
    from mrirecon.ops.tracking import ensure_experiment, experiment_url

    layout = setup_project()
    params = load_params(layout.params)
    experiment = params.train.experiment if params.train else "mrirecon"
    experiment_id = ensure_experiment(layout.root, experiment)  # before the server: tags, saved runs view
    logs = layout.root / ".prefect"
    logs.mkdir(exist_ok=True)
    services = [
        start_prefect_server(host, prefect_port, log=logs / "prefect-server.log"),
        start_mlflow_server(host, mlflow_port, os.environ["MLFLOW_TRACKING_URI"], log=logs / "mlflow-server.log"),
    ]
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        wait_healthy(services)
        typer.echo(f"Prefect UI: {services[0].url}   (API {services[0].url}/api)")
        typer.echo(f"MLflow runs of {experiment!r}: {experiment_url(services[1].url, experiment_id)}")
        typer.echo(
            f"MLflow UI:  {services[1].url}   (home page; MLflow opens other pages in GenAI mode unless the "
            "'Model training' toggle is set: the link above sets it and shows the key columns)"
        )
        typer.echo(
            f"To run against this server: export PREFECT_API_URL={services[0].url}/api ; "
            "then `mrirecon serve` registers the scheduled deployment. Ctrl-C stops both servers."
        )
        while all(s.process.poll() is None for s in services):
            time.sleep(1)
        typer.echo("a server exited; stopping", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping servers")
    except RuntimeError as exc:
        typer.echo(f"error: {exc} (logs in {logs})", err=True)
        raise typer.Exit(1) from exc
    finally:
        stop(services)


@app.command()
def serve(
    cron: Annotated[str | None, typer.Option(help="Cron schedule (default: serve.cron in params.yaml).")] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "scheduled",
    source: SourceOption = None,
    profile: Annotated[
        str | None, typer.Option(help="Params profile for scheduled runs, e.g. quick (params-quick.yaml).")
    ] = None,
) -> None:
    """Register the pipeline as a Prefect deployment with a cron schedule and serve it (runs start here).

    Needs a real Prefect server (`mrirecon ui`, or any server in PREFECT_API_URL); the default is
    http://127.0.0.1:4200/api when that answers."""
    from mrirecon.config import load_params
    from mrirecon.ops.services import is_healthy

    layout = setup_project()
    if not os.environ.get("PREFECT_API_URL"):
        default = "http://127.0.0.1:4200/api"
        if not is_healthy(f"{default}/health"):
            typer.echo(
                "error: schedules need a Prefect server: start one with `mrirecon ui` (or `prefect server start`) "
                "and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)",
                err=True,
            )
            raise typer.Exit(2)
        os.environ["PREFECT_API_URL"] = default
    schedule = cron or load_params(layout.params).serve.cron
    from flows.pipeline import pipeline_flow

    typer.echo(
        f"serving deployment mrirecon-pipeline/{name} with schedule '{schedule}' on {os.environ['PREFECT_API_URL']}"
    )
    pipeline_flow.serve(
        name=name,
        cron=schedule,
        parameters={"source": source, "profile": profile},
        description="The whole mrirecon DAG (DVC-aware), on a schedule.",
        tags=["mrirecon"],
    )


@app.command()
def compare(
    experiment: Annotated[str, typer.Option(help="MLflow experiment (default: train.experiment).")] = "",
    metric: Annotated[
        str, typer.Option(help="Sort by this metric: test_psnr, test_ssim, test_nmse, test_mse, val_mse ...")
    ] = "test_psnr",
    intensity: Annotated[str | None, typer.Option(help="Only runs of this intensity.")] = None,
    profile: Annotated[str | None, typer.Option(help="Only runs of this params profile (e.g. default).")] = None,
    top: Annotated[int, typer.Option(help="Rows to print per data version.")] = 30,
    out: Annotated[str | None, typer.Option(help="Comparison figure (default reports/compare_<metric>.png).")] = None,
) -> None:
    """Compare finished grid-point runs across all pipeline runs: one table per data version (runs on other
    data were tested on other subjects, so they are never ranked together), newest first, sorted by METRIC,
    and a figure of METRIC against each grid axis for the newest data version."""
    from rich.console import Console
    from rich.table import Table

    from mrirecon.config import load_params
    from mrirecon.evaluation.figures import metric_vs_axes, save_figure
    from mrirecon.grid import REQUIRED_AXES
    from mrirecon.ops.tracking import child_runs_table, group_by_data_version, short_data_version

    layout = setup_project()
    params = load_params(layout.params)
    name = experiment or (params.train.experiment if params.train else "mrirecon")
    try:
        rows = child_runs_table(layout.root, name)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    rows = [
        r
        for r in rows
        if metric in r and (not intensity or r["intensity"] == intensity) and (not profile or r["profile"] == profile)
    ]
    if not rows:
        typer.echo(f"no finished runs with metric {metric!r} in experiment {name!r}", err=True)
        raise typer.Exit(1)
    higher_better = metric.endswith(("psnr", "ssim", "pct_correct"))
    groups = group_by_data_version(rows)
    console = Console(width=160)
    columns = ["start", "profile", *REQUIRED_AXES, metric, "val_mse", "run_id"]
    for data_version, group in groups:
        group.sort(key=lambda r: r[metric], reverse=higher_better)
        profiles = ", ".join(sorted({r["profile"] or "?" for r in group}))
        table = Table(
            title=f"{name}, data {short_data_version(data_version)} (profile {profiles}): {len(group)} runs "
            f"sorted by {metric} ({'higher' if higher_better else 'lower'} is better)"
        )
        for column in columns:
            table.add_column(column)
        for row in group[:top]:
            table.add_row(*[f"{row[c]:.4g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns])
        console.print(table)
    if len(groups) > 1:
        typer.echo(
            f"note: {len(groups)} data versions, ranked separately (different data, different test subjects); "
            "newest first"
        )
    path = Path(out) if out else layout.reports / f"compare_{metric}.png"
    save_figure(metric_vs_axes(groups[0][1], metric, [a for a in REQUIRED_AXES if a != "intensity"]), path)
    typer.echo(f"figure ({'newest data version' if len(groups) > 1 else 'all runs'}): {path}")


@app.command()
def report(
    metrics: Annotated[str | None, typer.Option(help="metrics.json to read (default reports/metrics.json).")] = None,
    readme: Annotated[
        str | None,
        typer.Option(
            help="Markdown file whose benchmark-table, findings-table and lesion-table blocks are replaced "
            "(default README.md)."
        ),
    ] = None,
    title: Annotated[str, typer.Option(help="Heading line above the table.")] = "",
    print_only: Annotated[bool, typer.Option("--print", help="Only print the table.")] = False,
) -> None:
    """Regenerate the benchmark table (zero-filled, CS and best networks per intensity, with and
    without synthetic phase; PSNR/SSIM/NMSE on test subjects), the findings (best configuration per
    intensity, effect of each grid axis with its 95% CI) and the lesion table (contrast recovery,
    detectability, hallucination scores) in the README from metrics.json."""
    from mrirecon.evaluation.overview import read_report
    from mrirecon.evaluation.tables import (
        END,
        FINDINGS_END,
        FINDINGS_START,
        LESION_END,
        LESION_START,
        START,
        benchmark_table,
        findings_markdown,
        lesion_markdown,
        update_readme,
    )

    layout = setup_project()
    path = Path(metrics) if metrics else layout.reports / "metrics.json"
    if not path.exists():
        typer.echo(f"error: {path} not found: run the pipeline first", err=True)
        raise typer.Exit(1)
    document = read_report(path)
    table, findings, lesions = benchmark_table(document, title), findings_markdown(document), lesion_markdown(document)
    typer.echo(table)
    for extra in (findings, lesions):
        if extra:
            typer.echo(f"\n{extra}")
    if not print_only:
        target = Path(readme) if readme else layout.root / "README.md"
        candidates = [
            (table, (START, END)),
            (findings, (FINDINGS_START, FINDINGS_END)),
            (lesions, (LESION_START, LESION_END)),
        ]
        blocks = [(text, markers) for text, markers in candidates if text]
        changed = False
        for text, markers in blocks:
            try:
                changed |= update_readme(target, text, markers)
            except ValueError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc
        typer.echo(f"{target}: {'updated' if changed else 'already up to date'}")


@app.command()
def show() -> None:
    """Print the latest test-metrics table (reports/metrics.json) and where to look next."""
    layout = setup_project()
    if not (layout.reports / "metrics.json").exists():
        typer.echo("no reports/metrics.json yet: run `make run`, `dvc repro` or `mrirecon run`", err=True)
        raise typer.Exit(1)
    print_results(layout)
