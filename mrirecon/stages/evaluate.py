"""Evaluation stage, path in -> path out: ``models/train.json`` in; ``metrics.json`` (with its ``findings``),
``grid.csv``, ``findings.csv``, plot data (``plots/``) and figures (``figures/``) out.

External evaluation (other volumes) prepares its slices with :data:`ALL_TEST_SPLIT` and
:func:`external_slice_params`: every subject is a test subject, slices resampled to the training pixel size.

Scoring itself (baselines, one grid point) is :mod:`mrirecon.evaluation.scoring`; the report document and its
files are :mod:`mrirecon.evaluation.report`. Free of Prefect and MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from mrirecon.config import EvaluateParams, SliceParams, SplitParams
from mrirecon.data.slice_set import SliceSet
from mrirecon.data.storage import write_json
from mrirecon.evaluation.figures import (
    figure_slices_panel,
    lesion_figure,
    lesion_sweep_figure,
    metrics_vs_acceleration,
    save_figure,
    sweep_figure,
    training_curves,
)
from mrirecon.evaluation.findings import SWEEP_AXES, findings, swept_axes, write_findings_csv, write_sweep_csv
from mrirecon.evaluation.overview import write_index_html, write_summary
from mrirecon.evaluation.report import (
    PointResult,
    best_point,
    conventions,
    intensity_blocks,
    metrics_report,
    write_grid_csv,
    write_metrics_json,
    write_plot_data,
)
from mrirecon.evaluation.scoring import Baselines


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


def read_history(model_dir: Path) -> dict[str, list[float]] | None:
    """A grid point's per-epoch ``history.json`` (``{"loss": [...], "val_loss": [...]}``), None if absent."""
    path = model_dir / "history.json"
    return json.loads(path.read_text()) if path.exists() else None


def scored_intensities(accelerations: dict[str, float], summary: dict) -> dict[str, float]:
    """``{intensity: nominal acceleration}`` of the intensities with at least one trained grid point in
    ``summary``, in the order of ``accelerations`` (``params.yaml: masks.intensities``)."""
    trained = {p["intensity"] for p in summary["points"]}
    return {name: float(r) for name, r in accelerations.items() if name in trained}


#: Split of external volumes: every subject is a test subject.
ALL_TEST_SPLIT = SplitParams(fractions={"train": 0.0, "val": 0.0, "test": 1.0}, seed=0)


def external_slice_params(slices: SliceParams, trained_slices: Path) -> SliceParams:
    """``slices`` with ``pixel_mm`` set to the in-plane pixel size (mm) of the training slices (``voxel_mm[0]``
    of the first row of ``trained_slices``, a ``slices.parquet``), so external volumes are resampled to it."""
    trained_mm = pq.read_table(trained_slices, columns=["voxel_mm"]).column("voxel_mm")[0].as_py()
    return slices.model_copy(update={"pixel_mm": trained_mm[0]})


def write_reports(
    out: Path,
    intensities: dict[str, float],
    baselines: dict[str, Baselines],
    results: list[PointResult],
    figures: dict[str, np.ndarray],
    tests: dict[str, SliceSet],
    histories: dict[str, dict],
    evaluate: EvaluateParams,
) -> dict:
    """Write ``metrics.json``, ``grid.csv``, ``findings.csv``, plot data and figures under ``out``; return the report.

    Beside them the short views (:mod:`mrirecon.evaluation.overview`): ``summary/<intensity>.json`` (headline
    numbers, the DVC metrics), ``conventions.json`` (the metric conventions, so ``metrics.json`` holds numbers) and
    ``index.html`` (headline table and every figure, viewable offline); ``figures/training_curves.png`` draws the
    validation loss per epoch of every grid point.

    Beside the reconstruction panels and metrics vs acceleration, ``figures/sweep_<axis>.png`` (test PSNR and SSIM
    against ``layers``, ``batch_size``, ``epochs``; :func:`mrirecon.evaluation.figures.sweep_figure`) is drawn for
    each axis with at least two values among the points without synthetic phase (a stale one is removed).

    Args:
        out: reports folder (``reports/`` for the DVC stage).
        intensities: ``{intensity: nominal acceleration}`` in display order.
        baselines: ``{intensity: baselines on its test slices}`` (:func:`mrirecon.evaluation.scoring.score_baselines`).
        results: every scored grid point.
        figures: ``{grid point name: its reconstructions of the figure slices, (K, H, W)}``.
        tests: ``{intensity: test slices}`` (the figures' reference images and labels).
        histories: ``{grid point name: per-epoch history}`` for the training curves.
        evaluate: ``params.yaml: evaluate`` (``tolerance``, ``figure_slices``, ``ci_seed``, ``ci_resamples``).

    Returns:
        the ``metrics.json`` document (:func:`mrirecon.evaluation.report.metrics_report`) with its ``findings``
        block (:func:`mrirecon.evaluation.findings.findings`).
    """
    zero_filled = {i: b.conditions["magnitude"]["zero_filled"] for i, b in baselines.items()}
    cs = {i: b.conditions["magnitude"]["cs"] for i, b in baselines.items() if b.conditions["magnitude"]["cs"]}
    phase = {i: b.conditions["synthetic_phase"] for i, b in baselines.items() if "synthetic_phase" in b.conditions}
    effective = {i: b.effective for i, b in baselines.items()}
    scores = {
        i: b.conditions["magnitude"]["scores"] for i, b in baselines.items() if "scores" in b.conditions["magnitude"]
    }
    ci = (evaluate.ci_seed, evaluate.ci_resamples)
    report = metrics_report(intensities, zero_filled, results, cs, phase, effective, scores, *ci)
    report["findings"] = findings(intensities, results, *ci)
    add_lesion_blocks(report, baselines, results)
    write_metrics_json(out / "metrics.json", report)
    write_json(out / "conventions.json", conventions(evaluate.tolerance))
    numbers = write_summary(out / "summary", report)
    write_grid_csv(out / "grid.csv", results, zero_filled, {i: b["zero_filled"] for i, b in phase.items()})
    write_findings_csv(out / "findings.csv", report["findings"])
    rows = write_plot_data(out / "plots", report, histories)
    write_sweep_csv(out / "plots" / "sweep.csv", results)
    save_figure(metrics_vs_acceleration(rows), out / "figures" / "metrics_vs_acceleration.png")
    save_figure(training_curves(histories), out / "figures" / "training_curves.png")
    swept = swept_axes([r for r in results if not r.params.get("synthetic_phase")])
    for axis in SWEEP_AXES:
        path = out / "figures" / f"sweep_{axis}.png"
        if axis in swept:
            save_figure(sweep_figure(results, axis), path)
        else:
            path.unlink(missing_ok=True)
    write_lesion_figures(out / "figures", intensities, baselines, results, swept)
    for condition, intensity, block in intensity_blocks(report):
        best = block["best"]
        if not best:
            continue
        images = baselines[intensity].conditions[condition]["images"]
        suffix = "" if condition == "magnitude" else "_synthetic_phase"
        fig = figure_slices_panel(
            tests[intensity],
            evaluate.figure_slices,
            images["zero_filled"],
            figures[best["name"]],
            f"{intensity} (R={intensities[intensity]:g}{', synthetic phase' if suffix else ''}): "
            f"best = {best['name']}, PSNR {best['psnr']:.2f} dB",
            cs=images.get("cs"),
        )
        save_figure(fig, out / "figures" / f"reconstructions_{intensity}{suffix}.png")
    write_index_html(out, numbers, f"Tolerance of % correct: {evaluate.tolerance}.")
    return report


def _magnitude_points(results: list[PointResult], intensity: str) -> list[PointResult]:
    return [p for p in results if p.params["intensity"] == intensity and not p.params.get("synthetic_phase")]


def add_lesion_blocks(report: dict, baselines: dict[str, Baselines], results: list[PointResult]) -> None:
    """Add ``lesions: {"zero_filled", "cs", "best"}`` to each intensity block of ``report`` whose baselines ran the
    lesion check (:func:`mrirecon.evaluation.lesions.summarise` entries; ``best`` = the report's best point,
    k-space without synthetic phase; an entry without scores is None)."""
    for intensity, b in baselines.items():
        check = b.lesions
        if check is None or intensity not in report:
            continue
        best = best_point(_magnitude_points(results, intensity))
        report[intensity]["lesions"] = {
            "zero_filled": check.scores["zero_filled"],
            "cs": check.scores["cs"],
            "best": (best.lesions or None) if best else None,
        }


def write_lesion_figures(
    folder: Path,
    intensities: dict[str, float],
    baselines: dict[str, Baselines],
    results: list[PointResult],
    swept: list[str],
) -> None:
    """``figures/lesions_<intensity>.png`` (:func:`mrirecon.evaluation.figures.lesion_figure`: the lesions marked on
    the reference, zero-filled, CS and best reconstructions, and what each made of them) and, when ``layers`` or
    ``epochs`` is swept, ``figures/sweep_lesions.png`` (contrast recovery against them); stale ones are removed."""
    for intensity in intensities:
        path = folder / f"lesions_{intensity}.png"
        check = baselines[intensity].lesions
        best = best_point(_magnitude_points(results, intensity))
        if check is None:
            path.unlink(missing_ok=True)
            continue
        title = f"{intensity} (R={intensities[intensity]:g}): inserted lesions"
        save_figure(lesion_figure(check, best.name if best else None, best.lesion_shown if best else None, title), path)
    path = folder / "sweep_lesions.png"
    axes = [a for a in ("layers", "epochs") if a in swept]
    if axes and any(p.lesions for p in results):
        save_figure(lesion_sweep_figure(results, axes), path)
    else:
        path.unlink(missing_ok=True)
