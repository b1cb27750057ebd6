"""The ``mrirecon`` command: one subcommand per DVC stage, plus ``run`` for the whole DAG.

Stage commands are what ``dvc.yaml`` runs; each runs that stage's Prefect flow, so every
stage run shows in Prefect whichever way it was started.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .project import Layout, configure_environment, find_root

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
    Optional[str],
    typer.Option(
        "--source",
        help="Data source: a directory of IXI *T1.nii.gz files, an IXI-T1.tar archive, or 'sample'. "
        "Overrides $MRIRECON_SOURCE, which overrides data.source in params.yaml.",
    ),
]


def _setup() -> Layout:
    try:
        layout = Layout(find_root())
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_environment(layout.root)
    return layout


def _check_source(layout: Layout, source: str | None) -> None:
    """Fail within seconds (before Prefect starts) when no data source is reachable."""
    from .params import load_params
    from .sources import SourceError, resolve_source

    try:
        resolve_source(source, load_params(layout.params).data.source, layout.raw_sample)
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run(flow_fn, **kwargs):
    from .ingest import NoUsableVolumes

    try:
        return flow_fn(**kwargs)
    except NoUsableVolumes as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def run(
    source: SourceOption = None,
    force: Annotated[bool, typer.Option(help="Re-run every stage even if DVC says it is current.")] = False,
    until: Annotated[Optional[str], typer.Option(help="Stop after this stage (e.g. masks).")] = None,
) -> None:
    """Run the whole pipeline as one Prefect flow: each stale stage runs, then is committed to dvc.lock."""
    layout = _setup()
    _check_source(layout, source)
    from flows.pipeline import STAGES, pipeline_flow

    if until is not None and until not in STAGES:
        typer.echo(f"error: --until must be one of {', '.join(STAGES)}", err=True)
        raise typer.Exit(2)
    results = _run(pipeline_flow, source=source, force=force, until=until)
    for stage in ("ingest", "select", "masks", "train"):
        if stage in results:
            typer.echo(f"{stage:>8}: {_short(results[stage])}")
    _print_results(layout)


def _short(result) -> str:
    if isinstance(result, dict) and "points" in result:
        return f"{len(result['points'])} grid points trained (MLflow parent run {result['parent_run_id']})"
    return str(result)


def _print_results(layout: Layout) -> None:
    """A short table of the test metrics and where to look next."""
    import json

    path = layout.reports / "metrics.json"
    if not path.exists():
        return
    report = json.loads(path.read_text())
    typer.echo("\nTest subjects (mean over slices; PSNR data_range = reference slice max):")
    typer.echo(f"{'intensity':>10} {'R':>4} {'zero-filled PSNR/SSIM':>22} {'best PSNR/SSIM':>16}  best grid point")
    for intensity, block in report.items():
        if intensity == "conventions":
            continue
        zf, best = block["zero_filled"], block["best"] or {}
        best_txt = f"{best['psnr']:.2f}/{best['ssim']:.3f}" if best else "-"
        typer.echo(f"{intensity:>10} {block['acceleration']:>4g} {zf['psnr']:>13.2f}/{zf['ssim']:.3f} {best_txt:>16}  {best.get('name', '-')}")
    typer.echo(f"\nreports: {layout.reports}/ (metrics.json, grid.csv, figures/)")
    typer.echo(f"MLflow:  mlflow ui --backend-store-uri sqlite:///{layout.root / 'mlflow.db'}  (then open http://127.0.0.1:5000)")


@app.command()
def ingest(source: SourceOption = None) -> None:
    """Stage 1: read every IXI T1 volume of the source into data/interim/volumes.parquet
    (RAS, header scaling applied, sha256 per file); bad files go to data/interim/rejected.csv."""
    layout = _setup()
    _check_source(layout, source)
    from flows.ingest import ingest_flow

    typer.echo(_run(ingest_flow, source=source))


@app.command("select")
def select_cmd() -> None:
    """Stage 2: choose N adjacent axial slices through the brain per subject, normalise per
    volume, pad/crop to a square, and split train/val/test by subject -> data/processed/slices.parquet."""
    _setup()
    from flows.select import select_flow

    typer.echo(_run(select_flow))


@app.command()
def masks() -> None:
    """Stage 3: draw a Cartesian phase-encode mask (fully sampled centre) for every slice and
    undersampling intensity -> data/processed/masks.parquet."""
    _setup()
    from flows.masks import masks_flow

    typer.echo(_run(masks_flow))


@app.command()
def train() -> None:
    """Stage 4: train every point of the grid in params.yaml (model x layers x batch_size x epochs x
    intensity), each in a fresh process, as MLflow child runs under one parent run -> models/."""
    _setup()
    from flows.train import train_flow

    result = _run(train_flow)
    typer.echo(_short(result))


@app.command()
def evaluate(
    source: Annotated[Optional[str], typer.Option(
        "--source", help="Evaluate on another set of volumes (directory or tar): every subject is a test subject; "
        "runs ingestion, selection (resampled to the training pixel size) and masks in OUT/work.")] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="Folder for the reports (default: reports/, or reports-external/ with --source).")] = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Only this MLflow child run's grid point.")] = None,
) -> None:
    """Stage 5: score the trained grid points and the zero-filled baseline on the test subjects
    (MSE, NMSE, PSNR, SSIM, % correct) -> reports/metrics.json, reports/grid.csv, reports/figures/."""
    layout = _setup()
    if source is not None:
        _check_source(layout, source)
    from flows.evaluate import evaluate_flow

    result = _run(evaluate_flow, source=source, out=out, run_id=run_id)
    if source is None and out is None:
        _print_results(layout)
    else:
        typer.echo(f"reports written to {result['reports']}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
