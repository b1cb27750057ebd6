"""The ``mrirecon`` command: one subcommand per DVC stage, plus ``run`` for the whole DAG.

Stage commands are what ``dvc.yaml`` runs; each runs that stage's Prefect flow, so every
stage run shows in Prefect whichever way it was started.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
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


WorkersOption = Annotated[Optional[int], typer.Option(
    "--workers", help="Grid points trained at once, each in its own process (default: compute.workers).")]
DaskOption = Annotated[Optional[str], typer.Option(
    "--dask-address", help="Run grid points on an existing Dask cluster, e.g. tcp://host:8786 "
    "(default: compute.dask_address).")]


def _setup() -> Layout:
    try:
        layout = Layout(find_root())
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_environment(layout.root)
    from .params import ParamsError, load_params

    try:
        load_params(layout.params)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
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
    """Run a flow under the project lock, turning expected failures into one-line errors."""
    from .ingest import NoUsableVolumes  # StrictRejection is a subclass
    from .params import ParamsError
    from .runlock import RunLocked, project_lock
    from .slices import SliceSelectionError

    try:
        with project_lock(find_root(), " ".join(["mrirecon", *sys.argv[1:]])):
            return flow_fn(**kwargs)
    except RunLocked as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc
    except (NoUsableVolumes, ParamsError, SliceSelectionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def run(
    source: SourceOption = None,
    force: Annotated[bool, typer.Option(help="Re-run every stage even if DVC says it is current.")] = False,
    until: Annotated[Optional[str], typer.Option(help="Stop after this stage (e.g. masks).")] = None,
    profile: Annotated[Optional[str], typer.Option(help="Make params-<profile>.yaml the active params.yaml first.")] = None,
    workers: WorkersOption = None,
    dask_address: DaskOption = None,
) -> None:
    """Run the whole pipeline as one Prefect flow: each stale stage runs, then is committed to dvc.lock."""
    layout = _setup()
    _check_source(layout, source)
    from flows.pipeline import STAGES, pipeline_flow

    if until is not None and until not in STAGES:
        typer.echo(f"error: --until must be one of {', '.join(STAGES)}", err=True)
        raise typer.Exit(2)
    results = _run(pipeline_flow, source=source, force=force, until=until, profile=profile,
                   workers=workers, dask_address=dask_address)
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
    from .evaluation import intensity_blocks

    for condition, intensity, block in intensity_blocks(report):
        if condition != "magnitude" and not block["best"]:
            continue
        zf, best = block["zero_filled"], block["best"] or {}
        best_txt = f"{best['psnr']:.2f}/{best['ssim']:.3f}" if best else "-"
        label = intensity if condition == "magnitude" else f"{intensity}+phase"
        typer.echo(f"{label:>10} {block['acceleration']:>4g} {zf['psnr']:>13.2f}/{zf['ssim']:.3f} {best_txt:>16}  {best.get('name', '-')}")
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
def train(workers: WorkersOption = None, dask_address: DaskOption = None) -> None:
    """Stage 4: train every point of the grid in params.yaml (model x layers x batch_size x epochs x
    intensity), each in a fresh process, as MLflow child runs under one parent run -> models/.
    Points already trained with the same configuration and data are reused (resume)."""
    layout = _setup()
    from flows.train import train_flow_for

    from .params import load_params

    compute = load_params(layout.params).compute
    result = _run(train_flow_for(workers or compute.workers, dask_address or compute.dask_address))
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


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    prefect_port: Annotated[int, typer.Option(help="Port of the Prefect server and UI.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Start a Prefect server (UI + API, needed for schedules) and the MLflow UI; Ctrl-C stops both."""
    import signal

    from .services import start_mlflow_server, start_prefect_server, stop, wait_healthy

    layout = _setup()
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
        typer.echo(f"MLflow UI:  {services[1].url}")
        typer.echo(f"To run against this server: export PREFECT_API_URL={services[0].url}/api ; "
                   "then `mrirecon serve` registers the scheduled deployment. Ctrl-C stops both servers.")
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
    cron: Annotated[Optional[str], typer.Option(help="Cron schedule (default: serve.cron in params.yaml).")] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "scheduled",
    source: SourceOption = None,
    profile: Annotated[Optional[str], typer.Option(help="Params profile for scheduled runs, e.g. quick (params-quick.yaml).")] = None,
) -> None:
    """Register the pipeline as a Prefect deployment with a cron schedule and serve it (runs start here).

    Needs a real Prefect server (`mrirecon ui`, or any server in PREFECT_API_URL); the default is
    http://127.0.0.1:4200/api when that answers."""
    from .params import load_params
    from .services import is_healthy

    layout = _setup()
    if not os.environ.get("PREFECT_API_URL"):
        default = "http://127.0.0.1:4200/api"
        if not is_healthy(f"{default}/health"):
            typer.echo("error: schedules need a Prefect server: start one with `mrirecon ui` (or `prefect server start`) "
                       "and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)", err=True)
            raise typer.Exit(2)
        os.environ["PREFECT_API_URL"] = default
    schedule = cron or load_params(layout.params).serve.cron
    from flows.pipeline import pipeline_flow

    typer.echo(f"serving deployment mrirecon-pipeline/{name} with schedule '{schedule}' on {os.environ['PREFECT_API_URL']}")
    pipeline_flow.serve(name=name, cron=schedule, parameters={"source": source, "profile": profile},
                        description="The whole mrirecon DAG (DVC-aware), on a schedule.", tags=["mrirecon"])


@app.command()
def compare(
    experiment: Annotated[str, typer.Option(help="MLflow experiment (default: train.experiment).")] = "",
    metric: Annotated[str, typer.Option(help="Sort by this metric: test_psnr, test_ssim, test_nmse, test_mse, val_mse ...")] = "test_psnr",
    intensity: Annotated[Optional[str], typer.Option(help="Only runs of this intensity.")] = None,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 30,
    out: Annotated[Optional[str], typer.Option(help="Comparison figure (default reports/compare_<metric>.png).")] = None,
) -> None:
    """Compare finished grid-point runs across all pipeline runs: a table sorted by METRIC and a
    figure of METRIC against each grid axis."""
    from .figures import metric_vs_axes, save_figure
    from .params import load_params
    from tasks.tracking import child_runs_table

    layout = _setup()
    params = load_params(layout.params)
    name = experiment or (params.train.experiment if params.train else "mrirecon")
    try:
        rows = child_runs_table(layout.root, name)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if intensity:
        rows = [r for r in rows if r["intensity"] == intensity]
    rows = [r for r in rows if metric in r]
    if not rows:
        typer.echo(f"no finished runs with metric {metric!r} in experiment {name!r}", err=True)
        raise typer.Exit(1)
    higher_better = metric.endswith(("psnr", "ssim", "pct_correct"))
    rows.sort(key=lambda r: r[metric], reverse=higher_better)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{name}: {len(rows)} runs sorted by {metric} ({'higher' if higher_better else 'lower'} is better)")
    columns = ["start", "model", "layers", "batch_size", "epochs", "intensity", metric, "val_mse", "run_id"]
    for column in columns:
        table.add_column(column)
    for row in rows[:top]:
        table.add_row(*[f"{row[c]:.4g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns])
    Console(width=160).print(table)
    path = Path(out) if out else layout.reports / f"compare_{metric}.png"
    save_figure(metric_vs_axes(rows, metric, ["model", "layers", "batch_size", "epochs"]), path)
    typer.echo(f"figure: {path}")


@app.command()
def report(
    metrics: Annotated[Optional[str], typer.Option(help="metrics.json to read (default reports/metrics.json).")] = None,
    readme: Annotated[Optional[str], typer.Option(help="Markdown file whose benchmark-table block is replaced (default README.md).")] = None,
    title: Annotated[str, typer.Option(help="Heading line above the table.")] = "",
    print_only: Annotated[bool, typer.Option("--print", help="Only print the table.")] = False,
) -> None:
    """Regenerate the benchmark table (zero-filled, CS and best networks per intensity, with and
    without synthetic phase; PSNR/SSIM/NMSE on test subjects) in the README from metrics.json."""
    import json

    from .report import benchmark_table, update_readme

    layout = _setup()
    path = Path(metrics) if metrics else layout.reports / "metrics.json"
    if not path.exists():
        typer.echo(f"error: {path} not found: run the pipeline first", err=True)
        raise typer.Exit(1)
    table = benchmark_table(json.loads(path.read_text()), title)
    typer.echo(table)
    if not print_only:
        target = Path(readme) if readme else layout.root / "README.md"
        try:
            changed = update_readme(target, table)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"{target}: {'updated' if changed else 'already up to date'}")


@app.command()
def show() -> None:
    """Print the latest test-metrics table (reports/metrics.json) and where to look next."""
    layout = _setup()
    if not (layout.reports / "metrics.json").exists():
        typer.echo("no reports/metrics.json yet: run `make run`, `dvc repro` or `mrirecon run`", err=True)
        raise typer.Exit(1)
    _print_results(layout)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
