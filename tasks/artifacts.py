"""Prefect artifacts of a pipeline run: the grid's test metrics as a table, a markdown summary."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mrirecon.evaluation import PointResult


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts_task(report: dict, results: list[PointResult], zero_filled: dict, reports: Path, kind: str) -> None:
    """Create the ``mrirecon-grid-<kind>`` table and ``mrirecon-summary-<kind>`` markdown artifacts."""
    rows = [
        {"grid point": r.name, **{k: r.params[k] for k in ("model", "layers", "batch_size", "epochs", "intensity")},
         "val MSE": round(r.val_mse, 6), "test PSNR (dB)": round(r.metrics["psnr"], 2),
         "gain over zero-filled (dB)": round(r.metrics["psnr"] - zero_filled[r.params["intensity"]]["psnr"], 2),
         "test SSIM": round(r.metrics["ssim"], 4), "test NMSE": round(r.metrics["nmse"], 5), "MLflow run": r.run_id}
        for r in results
    ]
    create_table_artifact(rows, key=f"mrirecon-grid-{kind}", description="Test metrics of every grid point")
    lines = ["# mrirecon: best configuration per intensity", "",
             "Best = lowest validation MSE; metrics on test subjects (mean over slices, PSNR range = slice max).", "",
             "| intensity | R | zero-filled PSNR / SSIM | best | PSNR / SSIM | gain (dB) |", "|---|---|---|---|---|---|"]
    for intensity, block in report.items():
        if intensity == "conventions":
            continue
        zf, best = block["zero_filled"], block["best"]
        if best:
            lines.append(f"| {intensity} | {block['acceleration']:g} | {zf['psnr']:.2f} / {zf['ssim']:.3f} | "
                         f"{best['name']} | {best['psnr']:.2f} / {best['ssim']:.3f} | {best['psnr'] - zf['psnr']:+.2f} |")
    figures = sorted((reports / "figures").glob("*.png"))
    lines += ["", "Figures:", *[f"- `{path}`" for path in figures], "", f"Reports: `{reports}`"]
    create_markdown_artifact("\n".join(lines), key=f"mrirecon-summary-{kind}", description="Best model per intensity")
