"""Using a trained model on one's own data: ``mrirecon reconstruct``."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli.common import app


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def parse_slices(text: str | None) -> list[int] | None:
    """``"100:140"`` (half-open range) or ``"60,61,90"`` -> axial indices; None -> all.

    Raises:
        ValueError: on anything else.
    """
    if not text:
        return None
    if ":" in text:
        start, stop = text.split(":", 1)
        return list(range(int(start), int(stop)))
    return [int(part) for part in text.split(",") if part.strip()]


def _tracking_uri(option: str | None) -> str | None:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the store of the project around the cwd."""
    if option or os.environ.get("MLFLOW_TRACKING_URI"):
        return option or os.environ["MLFLOW_TRACKING_URI"]
    from mrirecon.ops.project import find_root
    from mrirecon.ops.tracking import tracking_uri

    try:
        return tracking_uri(find_root())
    except FileNotFoundError:
        return None


def _recipe_from_params(spec, params_file: Path):
    """The recipe of a checkpoint written before recipes, rebuilt from the params.yaml it was trained with."""
    from mrirecon.config import load_params
    from mrirecon.models.recipe import recipe_for, training_pixel_mm
    from mrirecon.ops.project import Layout

    params = load_params(params_file)
    if params.slices.pixel_mm is not None:
        pixel = (params.slices.pixel_mm, params.slices.pixel_mm)
    else:
        slices = Layout(params_file.resolve().parent).slices
        if not slices.is_file():
            raise ValueError(
                f"{params_file}: slices.pixel_mm is null (native) and {slices} is missing, so the training pixel "
                "size is unknown"
            )
        pixel = training_pixel_mm(slices)
    return recipe_for(params, spec.point.intensity, spec.point.synthetic_phase, pixel)


@app.command("reconstruct")
def reconstruct_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="models:/<name>@<alias>, models:/<name>/<version>, runs:/<run id>/model, an MLflow run id, "
            "or a checkpoint folder such as models/image-L3-B16-E8-medium.",
        ),
    ],
    input_path: Annotated[Path, typer.Option("--input", help="A 3D T1 NIfTI volume (.nii or .nii.gz).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    seed: Annotated[int | None, typer.Option(help="Seed of the mask draw (default: the recipe's mask seed).")] = None,
    acceleration: Annotated[
        float | None,
        typer.Option(
            help="Override the recipe's acceleration R (1 = fully sampled); outside the training distribution."
        ),
    ] = None,
    center_fraction: Annotated[
        float | None, typer.Option(help="Override the recipe's centre fraction; outside the training distribution.")
    ] = None,
    slices: Annotated[
        str | None, typer.Option(help="Axial (RAS z) slices to reconstruct, e.g. 100:140 or 60,90 (default: all).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Slices per network call.")] = 16,
    params: Annotated[
        Path | None, typer.Option(help="params.yaml the model was trained with, for a spec.json without a recipe.")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or the project's store).")
    ] = None,
) -> None:
    """Apply a trained model to your own scan: simulate the model's undersampling on every axial slice,
    reconstruct it, and write reference / zero_filled / reconstruction / error volumes on the input's voxel
    grid (they overlay it in any viewer), a PNG panel and summary.json into OUT."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rich.progress import Progress

    from mrirecon.data.scan import read_scan
    from mrirecon.data.volumes import VolumeError
    from mrirecon.models.checkpoint import load_trained_model, read_spec
    from mrirecon.ops.model_source import ModelSourceError, resolve_model
    from mrirecon.stages import reconstruct as core

    started = time.perf_counter()
    try:
        chosen = parse_slices(slices)
    except ValueError as exc:
        raise _fail(f"--slices {slices!r}: expected START:STOP or a comma-separated list of integers") from exc
    try:
        scan = read_scan(input_path)
    except VolumeError as exc:
        raise _fail(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="mrirecon-model-") as downloads:
        try:
            source = resolve_model(model, Path(downloads), _tracking_uri(tracking_uri))
            spec = read_spec(source.folder)
        except ModelSourceError as exc:
            raise _fail(str(exc)) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(f"{source.folder / 'spec.json'}: not a valid spec ({exc})") from exc
        try:
            if spec.recipe is None and params is not None:
                spec = replace(spec, recipe=_recipe_from_params(spec, params))
            recipe = core.require_recipe(spec, f"{model} ({source.folder / 'spec.json'})")
            simulation = core.simulation_for(spec, acceleration, center_fraction, seed)
        except (core.RecipeMissing, ValueError) as exc:
            raise _fail(str(exc)) from exc
        network = load_trained_model(source.folder)[0]
    for warning in simulation.warnings:
        typer.echo(f"warning: {warning}", err=True)
    total = scan.ras.shape[2] if chosen is None else len(set(chosen))
    typer.echo(f"{scan.path.name}: {scan.image.shape} {scan.axcodes}, model {source.description} ({spec.point.name})")
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("reconstructing axial slices", total=total)
            result = core.reconstruct_scan(
                network, spec, scan, simulation, chosen, batch_size, lambda n: progress.advance(task, n)
            )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    summary = core.write_outputs(
        result,
        scan,
        out,
        {
            "input": {
                "path": str(scan.path.resolve()),
                "shape": list(scan.image.shape),
                "axcodes": scan.axcodes,
                "voxel_mm_ras": list(scan.voxel_mm),
            },
            "model": {
                "reference": model,
                "resolved": source.description,
                "grid_point": spec.point.name,
                "run_id": source.run_id or spec.run_id,
            },
            "recipe": recipe.model_dump(mode="json"),
            "simulation": asdict(simulation),
            "seconds_to_reconstruct": round(time.perf_counter() - started, 2),
        },
    )
    metrics = summary["metrics"]
    for name in ("zero_filled", "reconstruction"):
        if name in metrics:
            psnr = metrics[name]["psnr"]
            shown = "inf" if psnr is None else f"{psnr:.2f}"
            typer.echo(f"{name:>15}: PSNR {shown} dB, SSIM {metrics[name]['ssim']:.4f} (volume, model's grid)")
    typer.echo(f"wrote {out}/ in {time.perf_counter() - started:.1f} s: {', '.join(summary['outputs'])}")
