"""Stage commands (what ``dvc.yaml`` runs; each runs that stage's Prefect flow) and ``run``."""

from __future__ import annotations

from typing import Annotated

import typer

from mrirecon.cli.common import (
    DaskOption,
    SourceOption,
    WorkersOption,
    app,
    check_source,
    print_results,
    run_flow,
    setup_project,
    short_result,
)


@app.command()
def run(
    source: SourceOption = None,
    force: Annotated[bool, typer.Option(help="Re-run every stage even if DVC says it is current.")] = False,
    until: Annotated[str | None, typer.Option(help="Stop after this stage (e.g. masks).")] = None,
    profile: Annotated[
        str | None, typer.Option(help="Run with params-<profile>.yaml; params.yaml is restored afterwards.")
    ] = None,
    workers: WorkersOption = None,
    dask_address: DaskOption = None,
) -> None:
    """Run the whole pipeline as one Prefect flow: each stale stage runs, then is committed to dvc.lock."""
    layout = setup_project()
    check_source(layout, source)
    from flows.pipeline import STAGES, pipeline_flow

    if until is not None and until not in STAGES:
        typer.echo(f"error: --until must be one of {', '.join(STAGES)}", err=True)
        raise typer.Exit(2)
    results = run_flow(
        pipeline_flow,
        source=source,
        force=force,
        until=until,
        profile=profile,
        workers=workers,
        dask_address=dask_address,
    )
    for stage in ("ingest", "select", "masks", "train"):
        if stage in results:
            typer.echo(f"{stage:>8}: {short_result(results[stage])}")
    print_results(layout)


@app.command()
def ingest(source: SourceOption = None) -> None:
    """Stage 1: read every IXI T1 volume of the source into data/interim/volumes.parquet
    (RAS, header scaling applied, sha256 per file); bad files go to data/interim/rejected.csv."""
    layout = setup_project()
    check_source(layout, source)
    from flows.ingest import ingest_flow

    typer.echo(run_flow(ingest_flow, source=source))


@app.command("select")
def select_cmd() -> None:
    """Stage 2: choose N adjacent axial slices through the brain per subject, normalise per
    volume, pad/crop to a square, and split train/val/test by subject -> data/processed/slices.parquet."""
    setup_project()
    from flows.select import select_flow

    typer.echo(run_flow(select_flow))


@app.command()
def masks() -> None:
    """Stage 3: draw a Cartesian phase-encode mask (fully sampled centre) for every slice and
    undersampling intensity -> data/processed/masks.parquet."""
    setup_project()
    from flows.masks import masks_flow

    typer.echo(run_flow(masks_flow))


@app.command()
def train(workers: WorkersOption = None, dask_address: DaskOption = None) -> None:
    """Stage 4: train every point of the grid in params.yaml (model x layers x batch_size x epochs x
    intensity), each in a fresh process, as MLflow child runs under one parent run -> models/.
    Points already trained with the same configuration and data are reused (resume)."""
    layout = setup_project()
    from flows.train import train_flow_for
    from mrirecon.config import load_params

    compute = load_params(layout.params).compute
    result = run_flow(train_flow_for(workers or compute.workers, dask_address or compute.dask_address))
    typer.echo(short_result(result))


@app.command()
def evaluate(
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Evaluate on another set of volumes (directory or tar): every subject is a test subject; "
            "runs ingestion, selection (resampled to the training pixel size) and masks in OUT/work.",
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Folder for the reports (default: reports/, or reports-external/ with --source)."),
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Only this MLflow child run's grid point.")] = None,
) -> None:
    """Stage 5: score the trained grid points and the zero-filled baseline on the test subjects
    (MSE, NMSE, PSNR, SSIM, % correct) -> reports/metrics.json, reports/grid.csv, reports/figures/."""
    layout = setup_project()
    if source is None:
        from flows.evaluate import evaluate_flow

        result = run_flow(evaluate_flow, out=out, run_id=run_id)
    else:
        check_source(layout, source)
        from flows.evaluate_external import evaluate_external_flow

        result = run_flow(evaluate_external_flow, source=source, out=out, run_id=run_id)
    if result.get("recipe_mismatch"):
        typer.echo(result["recipe_mismatch"], err=True)
    if source is None and out is None:
        print_results(layout)
    else:
        typer.echo(f"reports written to {result['reports']}")
