"""Prefect tasks of the evaluation step: zero-filled baseline, each grid point, reports."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import numpy as np

from mrirecon.cs import choose_lambda, cs_reconstruct_batch
from mrirecon.datasets import SliceSet, load_slice_set
from mrirecon.evaluation import (
    PointResult, diagnostics, figure_indices, intensity_blocks, load_trained_model,
    metrics_report, write_grid_csv, write_metrics_json, write_plot_data,
)
from mrirecon.metrics import mean_metrics
from mrirecon.params import EvaluateParams
from mrirecon.phase import effective_acceleration
from mrirecon.simulation import measure, zero_filled_magnitude
from mrirecon.figures import metrics_vs_acceleration, reconstruction_panel, save_figure
from tasks import tracking


@task(name="load-slice-set", task_run_name="load-{split}-{intensity}", cache_policy=NO_CACHE)
def load_split_task(slices: Path, masks: Path, intensity: str, split: str | None) -> SliceSet:
    """Slices of ``split`` (None = all) with their masks for one intensity."""
    return load_slice_set(slices, masks, intensity, split)


def _every(data: SliceSet, count: int) -> SliceSet:
    """``count`` evenly spaced slices of a set (all if fewer)."""
    keep = figure_indices(len(data), count)
    return SliceSet(data.images[keep], data.masks[keep], [data.subjects[i] for i in keep],
                    data.slice_index[keep], data.acceleration)


@task(name="baselines", task_run_name="baselines-{intensity}", cache_policy=NO_CACHE)
def baselines_task(intensity: str, test: SliceSet, val: SliceSet | None, evaluate: EvaluateParams,
                   phase_seed: int) -> dict:
    """Zero-filled and compressed-sensing baselines on the test slices, with and without
    synthetic phase. The CS weight is chosen on (a subset of) the validation slices
    without phase and reused with phase.

    Returns:
        ``{"magnitude" | "synthetic_phase": {"zero_filled": metrics, "cs": metrics + lambda | None,
        "images": {"zero_filled": (K, H, W), "cs": (K, H, W)}}, "effective": {...}}`` where
        ``images`` hold the figure slices.
    """
    logger = get_run_logger()
    tol = evaluate.tolerance
    shown = figure_indices(len(test), evaluate.figure_slices)
    lam = None
    if evaluate.cs and val is not None:
        subset = _every(val, evaluate.cs_val_slices)
        lam, scores = choose_lambda(subset.images, subset.masks, tuple(evaluate.cs_lambdas), tol,
                                    evaluate.cs_iterations, wavelet=evaluate.cs_wavelet,
                                    cycle_spin=evaluate.cs_cycle_spin)
        logger.info("%s CS: lambda %.2g chosen on %d validation slices (PSNR %s)", intensity, lam, len(subset),
                    {f"{k:.0e}": round(v, 2) for k, v in scores.items()})
    conditions = [False, True] if evaluate.synthetic_phase_baselines else [False]
    out: dict = {}
    for phase in conditions:
        measured, _ = measure(test, phase, phase_seed)
        zf = zero_filled_magnitude(measured)
        block = {"zero_filled": mean_metrics(test.images, zf, tol), "cs": None,
                 "images": {"zero_filled": zf[shown]}}
        if lam is not None:
            cs = np.abs(cs_reconstruct_batch(measured, test.masks, lam, evaluate.cs_iterations,
                                             wavelet=evaluate.cs_wavelet, cycle_spin=evaluate.cs_cycle_spin))
            cs = cs.astype(np.float32)
            block["cs"] = {**mean_metrics(test.images, cs, tol), "lambda": lam}
            block["images"]["cs"] = cs[shown]
        out["synthetic_phase" if phase else "magnitude"] = block
        logger.info("%s%s: zero-filled PSNR %.2f dB%s", intensity, " (synthetic phase)" if phase else "",
                    block["zero_filled"]["psnr"], f", CS {block['cs']['psnr']:.2f} dB" if block["cs"] else "")
    out["effective"] = {
        "nominal": float(test.acceleration),
        "achieved": float(np.mean(effective_acceleration(test.masks, hermitian=False))),
        "hermitian": float(np.mean(effective_acceleration(test.masks, hermitian=True))),
    }
    return out


@task(name="evaluate-grid-point", task_run_name="evaluate-{entry[name]}", cache_policy=NO_CACHE)
def evaluate_point_task(root: Path, entry: dict, test: SliceSet, train: SliceSet | None, evaluate: EvaluateParams,
                        zero_filled_shown: np.ndarray, log_to_mlflow: bool) -> tuple[PointResult, object]:
    """Reconstruct the test slices with one trained grid point, score them, and diagnose it.

    Diagnostics (:func:`mrirecon.evaluation.diagnostics`): the train-test gap (metrics on the
    point's training subjects) and test PSNR with k-space noise. With ``log_to_mlflow`` the
    metrics (``test_*``, ``train_*``, ``psnr_gap_db``, ``noisy_psnr`` ...) and a panel of fixed
    test slices (reference, zero-filled, reconstruction, error map) go to the point's child run.

    Returns:
        ``(PointResult, reconstructions of the figure slices)``.
    """
    import keras

    from mrirecon.grid import GridPoint
    from mrirecon.training import ModelSettings, reconstruct

    model, spec = load_trained_model(root / entry["model_dir"])
    point, settings = GridPoint(**spec["point"]), ModelSettings(**spec["settings"])
    recon = reconstruct(model, point.model, test, settings=settings, synthetic_phase=point.synthetic_phase)
    noisy = reconstruct(model, point.model, test, settings=settings, synthetic_phase=point.synthetic_phase,
                        noise_fraction=evaluate.noise_fraction)
    train_recon = (reconstruct(model, point.model, train, settings=settings, synthetic_phase=point.synthetic_phase)
                   if train is not None else None)
    keras.backend.clear_session()
    tol = evaluate.tolerance
    metrics = mean_metrics(test.images, recon, tol)
    result = PointResult(entry["name"], entry["run_id"], spec["point"], entry["val_mse"], test.acceleration,
                         metrics, entry.get("wall_time_s", float("nan")))
    if train_recon is not None:
        result.diagnostics = diagnostics(mean_metrics(train.images, train_recon, tol), metrics,
                                         mean_metrics(test.images, noisy, tol), evaluate.overfit_gap_db)
    shown = figure_indices(len(test), evaluate.figure_slices)
    if log_to_mlflow:
        numbers = {f"test_{k}": v for k, v in metrics.items()}
        numbers.update({k: float(v) for k, v in result.diagnostics.items()})
        tracking.log_metrics(root, entry["run_id"], numbers)
        fig = reconstruction_panel(
            test.images[shown], zero_filled_shown, recon[shown], f"{entry['name']} (test)",
            [f"{test.subjects[i]} z={test.slice_index[i]}" for i in shown],
        )
        tracking.client_for(root).log_figure(entry["run_id"], fig, "images/test_slices.png")
        import matplotlib.pyplot as plt

        plt.close(fig)
    get_run_logger().info("%s: test PSNR %.2f dB, SSIM %.3f, NMSE %.4f; train-test gap %s dB; noisy PSNR %s dB",
                          entry["name"], metrics["psnr"], metrics["ssim"], metrics["nmse"],
                          _fmt(result.diagnostics.get("psnr_gap_db")), _fmt(result.diagnostics.get("noisy_psnr")))
    return result, recon[shown]


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


@task(name="write-reports", cache_policy=NO_CACHE)
def write_reports_task(out: Path, intensities: dict[str, float], baselines: dict, results: list[PointResult],
                       figures: dict, tests: dict[str, SliceSet], histories: dict, tolerance: float,
                       n_figure: int) -> dict:
    """Write metrics.json, grid.csv, plot data and figures under ``out``; return the report.

    Args:
        baselines: ``{intensity: output of baselines_task}``.
    """
    zero_filled = {i: b["magnitude"]["zero_filled"] for i, b in baselines.items()}
    cs = {i: b["magnitude"]["cs"] for i, b in baselines.items() if b["magnitude"]["cs"]}
    phase = {i: b["synthetic_phase"] for i, b in baselines.items() if "synthetic_phase" in b}
    effective = {i: b["effective"] for i, b in baselines.items()}
    report = metrics_report(intensities, zero_filled, results, tolerance, cs, phase, effective)
    write_metrics_json(out / "metrics.json", report)
    write_grid_csv(out / "grid.csv", results, zero_filled, {i: b["zero_filled"] for i, b in phase.items()})
    rows = write_plot_data(out / "plots", report, histories)
    save_figure(metrics_vs_acceleration(rows), out / "figures" / "metrics_vs_acceleration.png")
    for condition, intensity, block in intensity_blocks(report):
        best = block["best"]
        if not best:
            continue
        test = tests[intensity]
        shown = figure_indices(len(test), n_figure)
        images = baselines[intensity]["magnitude" if condition == "magnitude" else "synthetic_phase"]["images"]
        suffix = "" if condition == "magnitude" else "_synthetic_phase"
        fig = reconstruction_panel(
            test.images[shown], images["zero_filled"], figures[best["name"]],
            f"{intensity} (R={intensities[intensity]:g}{', synthetic phase' if suffix else ''}): "
            f"best = {best['name']}, PSNR {best['psnr']:.2f} dB",
            [f"{test.subjects[i]} z={test.slice_index[i]}" for i in shown], cs=images.get("cs"),
        )
        save_figure(fig, out / "figures" / f"reconstructions_{intensity}{suffix}.png")
    return report


@task(name="log-reports-to-parent", cache_policy=NO_CACHE)
def log_parent_task(root: Path, parent_run_id: str, report: dict, reports_dir: Path) -> None:
    """Attach the reports to the MLflow parent run and log the headline numbers; finish it."""
    metrics = {}
    for condition, intensity, block in intensity_blocks(report):
        prefix = f"{intensity}_" if condition == "magnitude" else f"phase_{intensity}_"
        metrics[f"{prefix}zero_filled_psnr"] = block["zero_filled"]["psnr"]
        if block.get("cs"):
            metrics[f"{prefix}cs_psnr"] = block["cs"]["psnr"]
        if block["best"]:
            metrics[f"{prefix}best_psnr"] = block["best"]["psnr"]
            metrics[f"{prefix}best_ssim"] = block["best"]["ssim"]
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
