"""Prefect tasks of the evaluation step: zero-filled baseline, each grid point, reports."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.datasets import SliceSet, load_slice_set
from mrirecon.evaluation import (
    PointResult, evaluate_images, figure_indices, load_trained_model, metrics_report,
    write_grid_csv, write_metrics_json, write_plot_data, zero_filled_images,
)
from mrirecon.figures import metrics_vs_acceleration, reconstruction_panel, save_figure
from tasks import tracking


@task(name="load-test-set", cache_policy=NO_CACHE)
def load_test_task(slices: Path, masks: Path, intensity: str) -> SliceSet:
    """Test-split slices with their masks for one intensity."""
    return load_slice_set(slices, masks, intensity, "test")


@task(name="zero-filled-baseline", cache_policy=NO_CACHE)
def zero_filled_task(test: SliceSet, tolerance: float) -> dict:
    """Metrics of the zero-filled reconstruction of the test slices."""
    return evaluate_images(test.images, zero_filled_images(test), tolerance)


@task(name="evaluate-grid-point", task_run_name="evaluate-{entry[name]}", cache_policy=NO_CACHE)
def evaluate_point_task(root: Path, entry: dict, test: SliceSet, tolerance: float, n_figure: int,
                        log_to_mlflow: bool) -> tuple[PointResult, object]:
    """Reconstruct the test slices with one trained grid point and score them.

    With ``log_to_mlflow`` the metrics (prefixed ``test_``) and a panel of fixed test slices
    (reference, zero-filled, reconstruction, error map) go to the point's MLflow child run.

    Returns:
        ``(PointResult, reconstructions of the figure slices)``.
    """
    import keras

    from mrirecon.training import reconstruct

    model, spec = load_trained_model(root / entry["model_dir"])
    recon = reconstruct(model, spec["point"]["model"], test)
    keras.backend.clear_session()
    metrics = evaluate_images(test.images, recon, tolerance)
    result = PointResult(entry["name"], entry["run_id"], spec["point"], entry["val_mse"], test.acceleration,
                         metrics, entry.get("wall_time_s", float("nan")))
    shown = figure_indices(len(test), n_figure)
    if log_to_mlflow:
        tracking.log_metrics(root, entry["run_id"], {f"test_{k}": v for k, v in metrics.items()})
        fig = reconstruction_panel(
            test.images[shown], zero_filled_images(test)[shown], recon[shown], f"{entry['name']} (test)",
            [f"{test.subjects[i]} z={test.slice_index[i]}" for i in shown],
        )
        tracking.client_for(root).log_figure(entry["run_id"], fig, "images/test_slices.png")
        import matplotlib.pyplot as plt

        plt.close(fig)
    get_run_logger().info("%s: test PSNR %.2f dB, SSIM %.3f, NMSE %.4f", entry["name"], metrics["psnr"],
                          metrics["ssim"], metrics["nmse"])
    return result, recon[shown]


@task(name="write-reports", cache_policy=NO_CACHE)
def write_reports_task(out: Path, intensities: dict[str, float], zero_filled: dict, results: list[PointResult],
                       figures: dict, tests: dict[str, SliceSet], histories: dict, tolerance: float,
                       n_figure: int) -> dict:
    """Write metrics.json, grid.csv, plot data and figures under ``out``; return the report."""
    report = metrics_report(intensities, zero_filled, results, tolerance)
    write_metrics_json(out / "metrics.json", report)
    write_grid_csv(out / "grid.csv", results, zero_filled)
    write_plot_data(out / "plots", report, histories)
    rows = list(_read_csv(out / "plots" / "metrics_vs_acceleration.csv"))
    save_figure(metrics_vs_acceleration(rows), out / "figures" / "metrics_vs_acceleration.png")
    for intensity, test in tests.items():
        best = report[intensity]["best"]
        if not best:
            continue
        shown = figure_indices(len(test), n_figure)
        fig = reconstruction_panel(
            test.images[shown], zero_filled_images(test)[shown], figures[best["name"]],
            f"{intensity} (R={intensities[intensity]:g}): best = {best['name']}, PSNR {best['psnr']:.2f} dB",
            [f"{test.subjects[i]} z={test.slice_index[i]}" for i in shown],
        )
        save_figure(fig, out / "figures" / f"reconstructions_{intensity}.png")
    return report


def _read_csv(path: Path):
    import csv

    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            yield {k: float(v) for k, v in row.items() if v not in ("", None) and k != "intensity"}


@task(name="log-reports-to-parent", cache_policy=NO_CACHE)
def log_parent_task(root: Path, parent_run_id: str, report: dict, reports_dir: Path) -> None:
    """Attach the reports to the MLflow parent run and log the headline numbers; finish it."""
    metrics = {}
    for intensity, block in report.items():
        if intensity == "conventions":
            continue
        metrics[f"{intensity}_zero_filled_psnr"] = block["zero_filled"]["psnr"]
        if block["best"]:
            metrics[f"{intensity}_best_psnr"] = block["best"]["psnr"]
            metrics[f"{intensity}_best_ssim"] = block["best"]["ssim"]
    tracking.log_metrics(root, parent_run_id, metrics)
    client = tracking.client_for(root)
    for name in ("metrics.json", "grid.csv"):
        client.log_artifact(parent_run_id, str(reports_dir / name), "reports")
    client.log_artifacts(parent_run_id, str(reports_dir / "figures"), "reports/figures")
    tracking.end_run(root, parent_run_id, "FINISHED")


def read_train_summary(models_dir: Path, run_id: str | None = None) -> dict:
    """``models/train.json``, optionally keeping only the grid point with MLflow ``run_id``.

    Raises:
        FileNotFoundError: if training has not run; ValueError: unknown ``run_id``.
    """
    path = models_dir / "train.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the train stage first (mrirecon train or dvc repro train)")
    summary = json.loads(path.read_text())
    if run_id:
        summary["points"] = [p for p in summary["points"] if p["run_id"] == run_id]
        if not summary["points"]:
            raise ValueError(f"no grid point with MLflow run id {run_id} in {path}")
    return summary
