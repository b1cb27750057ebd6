"""Prefect artifacts of a pipeline run: the grid's test metrics as a table, a markdown summary."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mrirecon.evaluation import PointResult, intensity_blocks


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts_task(report: dict, results: list[PointResult], reports: Path, kind: str) -> None:
    """Create the ``mrirecon-grid-<kind>`` table and ``mrirecon-summary-<kind>`` markdown artifacts
    (best configuration per intensity, baselines, which grid points overfit, figure paths)."""
    def zero_filled_psnr(r: PointResult) -> float:
        block = (report.get("synthetic_phase", {}) if r.params.get("synthetic_phase") else report)[r.params["intensity"]]
        return block["zero_filled"]["psnr"]

    rows = [
        {"grid point": r.name, **{k: r.params[k] for k in ("model", "layers", "batch_size", "epochs", "intensity")},
         "val MSE": round(r.val_mse, 6), "test PSNR (dB)": round(r.metrics["psnr"], 2),
         "gain over zero-filled (dB)": round(r.metrics["psnr"] - zero_filled_psnr(r), 2),
         "test SSIM": round(r.metrics["ssim"], 4), "test NMSE": round(r.metrics["nmse"], 5),
         "train-test PSNR gap (dB)": round(r.diagnostics["psnr_gap_db"], 2) if r.diagnostics else None,
         "noisy test PSNR (dB)": round(r.diagnostics["noisy_psnr"], 2) if r.diagnostics else None,
         "MLflow run": r.run_id}
        for r in results
    ]
    create_table_artifact(rows, key=f"mrirecon-grid-{kind}", description="Test metrics of every grid point")
    lines = ["# mrirecon: best configuration per intensity", "",
             "Best = lowest validation MSE; metrics on test subjects (mean over slices, PSNR range = slice max).", "",
             "| k-space | intensity | R | zero-filled PSNR / SSIM | CS PSNR / SSIM | best | PSNR / SSIM | gain (dB) |",
             "|---|---|---|---|---|---|---|---|"]
    for condition, intensity, block in intensity_blocks(report):
        zf, best, cs = block["zero_filled"], block["best"], block.get("cs")
        cs_text = f"{cs['psnr']:.2f} / {cs['ssim']:.3f}" if cs else "-"
        best_text = (f"{best['name']} | {best['psnr']:.2f} / {best['ssim']:.3f} | {best['psnr'] - zf['psnr']:+.2f}"
                     if best else "- | - | -")
        lines.append(f"| {condition.replace('_', ' ')} | {intensity} | {block['acceleration']:g} | "
                     f"{zf['psnr']:.2f} / {zf['ssim']:.3f} | {cs_text} | {best_text} |")
    overfit = [r for r in results if r.diagnostics.get("overfit")]
    lines += ["", "## Overfitting and robustness", "",
              "Train-test gap = PSNR on the point's training subjects minus PSNR on test subjects; "
              "noisy = test PSNR with complex Gaussian k-space noise added.", ""]
    if overfit:
        lines += [f"- **{r.name}** overfits: gap {r.diagnostics['psnr_gap_db']:.2f} dB "
                  f"(test/train MSE ratio {r.diagnostics['mse_ratio']:.2f})" for r in overfit]
    elif any(r.diagnostics for r in results):
        worst = max((r for r in results if r.diagnostics), key=lambda r: r.diagnostics["psnr_gap_db"])
        lines.append(f"No grid point overfits (largest gap: {worst.name}, {worst.diagnostics['psnr_gap_db']:.2f} dB).")
    figures = sorted((reports / "figures").glob("*.png"))
    lines += ["", "Figures:", *[f"- `{path}`" for path in figures], "", f"Reports: `{reports}`"]
    create_markdown_artifact("\n".join(lines), key=f"mrirecon-summary-{kind}", description="Best model per intensity")
