"""Prefect tasks of the evaluation step: baselines, each grid point, reports, MLflow logging.

Each task calls one function of :mod:`mrirecon.evaluation.scoring` or :mod:`mrirecon.stages.evaluate`, logs,
and returns; MLflow logging (child-run metrics and panel, parent run) happens only here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.config import EvaluateParams
from mrirecon.data.slice_set import SliceSet, load_slice_set
from mrirecon.evaluation.figures import figure_slices_panel
from mrirecon.evaluation.lesions import flat_metrics
from mrirecon.evaluation.report import PointResult, headline_metrics
from mrirecon.evaluation.scoring import Baselines, evaluate_point, score_baselines
from mrirecon.ops import tracking
from mrirecon.stages.evaluate import write_reports


@task(name="load-slice-set", task_run_name="load-{split}-{intensity}", cache_policy=NO_CACHE)
def load_split_task(slices: Path, masks: Path, intensity: str, split: str | None) -> SliceSet:
    """Slices of ``split`` (None = all) with their masks for one intensity."""
    return load_slice_set(slices, masks, intensity, split)


@task(name="baselines", task_run_name="baselines-{intensity}", cache_policy=NO_CACHE)
def baselines_task(
    intensity: str, test: SliceSet, val: SliceSet | None, evaluate: EvaluateParams, phase_seed: int
) -> Baselines:
    """Zero-filled and compressed-sensing baselines on the test slices, with and without synthetic phase
    (:func:`mrirecon.evaluation.scoring.score_baselines`); the CS weight is chosen on validation slices."""
    logger = get_run_logger()
    baselines = score_baselines(test, val, evaluate, phase_seed)
    if baselines.cs_lambda is not None:
        logger.info(
            "%s CS: lambda %.2g chosen on %d validation slices (PSNR %s)",
            intensity,
            baselines.cs_lambda,
            baselines.cs_val_slices,
            {f"{k:.0e}": round(v, 2) for k, v in baselines.cs_scores.items()},
        )
    for condition, block in baselines.conditions.items():
        logger.info(
            "%s%s: zero-filled PSNR %.2f dB%s",
            intensity,
            " (synthetic phase)" if condition == "synthetic_phase" else "",
            block["zero_filled"]["psnr"],
            f", CS {block['cs']['psnr']:.2f} dB" if block["cs"] else "",
        )
    return baselines


@task(name="evaluate-grid-point", task_run_name="evaluate-{entry[name]}", cache_policy=NO_CACHE)
def evaluate_point_task(
    root: Path,
    entry: dict,
    test: SliceSet,
    train: SliceSet | None,
    evaluate: EvaluateParams,
    zero_filled_shown: np.ndarray,
    log_to_mlflow: bool,
) -> tuple[PointResult, np.ndarray]:
    """Reconstruct the test slices with one trained grid point, score them, and diagnose it
    (:func:`mrirecon.evaluation.scoring.evaluate_point`).

    With ``log_to_mlflow`` the metrics (``test_*``, ``train_*``, ``psnr_gap_db``, ``noisy_psnr``, ``lesion_*`` ...)
    and a panel of fixed test slices (reference, zero-filled, reconstruction, error map) go to the point's child run.

    Returns:
        ``(PointResult, reconstructions of the figure slices)``.
    """
    result, shown = evaluate_point(root / entry["model_dir"], entry, test, train, evaluate)
    if log_to_mlflow:
        numbers = {f"test_{k}": v for k, v in result.metrics.items()}
        numbers.update({k: float(v) for k, v in result.diagnostics.items()})
        numbers.update(flat_metrics(result.lesions))
        tracking.log_metrics(root, entry["run_id"], numbers)
        fig = figure_slices_panel(test, evaluate.figure_slices, zero_filled_shown, shown, f"{entry['name']} (test)")
        tracking.client_for(root).log_figure(entry["run_id"], fig, "images/test_slices.png")
        import matplotlib.pyplot as plt

        plt.close(fig)
    metrics, diagnostics = result.metrics, result.diagnostics
    get_run_logger().info(
        "%s: test PSNR %.2f dB, SSIM %.3f, NMSE %.4f; train-test gap %s dB; noisy PSNR %s dB",
        entry["name"],
        metrics["psnr"],
        metrics["ssim"],
        metrics["nmse"],
        _fmt(diagnostics.get("psnr_gap_db")),
        _fmt(diagnostics.get("noisy_psnr")),
    )
    return result, shown


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


@task(name="write-reports", cache_policy=NO_CACHE)
def write_reports_task(
    out: Path,
    intensities: dict[str, float],
    baselines: dict[str, Baselines],
    results: list[PointResult],
    figures: dict,
    tests: dict[str, SliceSet],
    histories: dict,
    evaluate: EvaluateParams,
) -> dict:
    """Write metrics.json (with its findings), grid.csv, findings.csv, plot data and figures under ``out``; return
    the report (:func:`mrirecon.stages.evaluate.write_reports`)."""
    report = write_reports(out, intensities, baselines, results, figures, tests, histories, evaluate)
    get_run_logger().info("reports written to %s", out)
    return report


@task(name="log-reports-to-parent", cache_policy=NO_CACHE)
def log_parent_task(root: Path, parent_run_id: str, report: dict, reports_dir: Path) -> None:
    """Attach the reports (``metrics.json``, ``conventions.json``, ``grid.csv``, ``findings.csv``, ``index.html``, the
    figures) to the MLflow parent run and log the headline numbers
    (:func:`mrirecon.evaluation.report.headline_metrics`); finish it."""
    tracking.log_metrics(root, parent_run_id, headline_metrics(report))
    client = tracking.client_for(root)
    for name in ("metrics.json", "conventions.json", "grid.csv", "findings.csv", "index.html"):
        client.log_artifact(parent_run_id, str(reports_dir / name), "reports")
    client.log_artifacts(parent_run_id, str(reports_dir / "figures"), "reports/figures")
    tracking.end_run(root, parent_run_id, "FINISHED")
