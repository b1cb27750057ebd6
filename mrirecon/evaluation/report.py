"""Evaluation on test subjects: network vs zero-filled metrics, best-model choice, reports.

Best model per intensity = lowest *validation* MSE among that intensity's grid points; its
*test* metrics are reported (choosing on test would leak). Metric conventions:
:data:`mrirecon.mri.metrics.CONVENTIONS`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrirecon.data.storage import atomic_path, write_csv
from mrirecon.evaluation.lesions import flat_columns, flat_metrics
from mrirecon.evaluation.uncertainty import RESAMPLES, UNCERTAINTY_KEYS, paired_differences
from mrirecon.grid import REQUIRED_AXES
from mrirecon.mri.metrics import CONVENTIONS, METRIC_NAMES


@dataclass
class PointResult:
    """Test metrics of one trained grid point."""

    name: str
    run_id: str
    params: dict
    val_mse: float
    acceleration: float
    metrics: dict[str, float]
    wall_time_s: float = float("nan")
    diagnostics: dict = field(default_factory=dict)
    #: per-subject values behind the metrics (:func:`mrirecon.evaluation.uncertainty.subject_scores`)
    scores: dict = field(default_factory=dict)
    #: lesion and hallucination scores (:func:`mrirecon.evaluation.lesions.summarise`), {} when not checked
    lesions: dict = field(default_factory=dict)
    #: ``(with lesions, without)`` float32 ``(H, W)`` reconstructions of the lesion figure's slice
    lesion_shown: tuple | None = None


#: Per grid point overfitting/robustness diagnostics (see :func:`diagnostics`).
DIAGNOSTICS = ("train_mse", "train_psnr", "psnr_gap_db", "mse_ratio", "noisy_psnr", "noise_drop_db", "overfit")


def diagnostics(train_metrics: dict, test_metrics: dict, noisy_test_metrics: dict, overfit_gap_db: float) -> dict:
    """Overfitting and robustness figures of one grid point.

    ``psnr_gap_db`` = train PSNR - test PSNR and ``mse_ratio`` = test MSE / train MSE (the
    train-test gap: a model that memorised its training subjects does much better on them);
    ``noisy_psnr`` = test PSNR with complex Gaussian noise added to the measured k-space and
    ``noise_drop_db`` its loss against the noiseless test PSNR (a brittle or hallucinating
    model loses more than the noise itself costs). ``overfit`` = ``psnr_gap_db > overfit_gap_db``.
    """
    gap = train_metrics["psnr"] - test_metrics["psnr"]
    return {
        "train_mse": train_metrics["mse"],
        "train_psnr": train_metrics["psnr"],
        "psnr_gap_db": gap,
        "mse_ratio": test_metrics["mse"] / train_metrics["mse"] if train_metrics["mse"] > 0 else float("inf"),
        "noisy_psnr": noisy_test_metrics["psnr"],
        "noise_drop_db": test_metrics["psnr"] - noisy_test_metrics["psnr"],
        "overfit": bool(gap > overfit_gap_db),
    }


def figure_indices(n: int, count: int) -> list[int]:
    """Fixed slice positions shown in figures: ``count`` evenly spaced of ``n`` (stable order)."""
    return sorted({int(i) for i in np.linspace(0, n - 1, min(count, n))})


def conventions(tolerance: float) -> dict:
    """The metric conventions (``reports/conventions.json``, beside ``metrics.json``, which holds numbers only)."""
    return {
        **CONVENTIONS,
        "pct_correct_tolerance": tolerance,
        "best": "per intensity, the grid point with the lowest validation MSE (image domain); test metrics reported",
        "split": "test subjects only; train/validation/test are disjoint sets of subjects",
        "volume": (
            "volume_nmse, volume_psnr, volume_ssim: the fastMRI volume convention per test subject (NMSE and PSNR "
            "over the subject's slices with the subject's maximum as data range, SSIM per slice with that range), "
            "then mean over subjects"
        ),
        "ci95": (
            "<metric>_ci_low/_ci_high: 95% percentile-bootstrap interval of the mean over test subjects (subjects "
            "resampled, seeded); differences: paired per subject (best minus baseline), resolved if 0 is outside"
        ),
        "findings": (
            "effect of layers, batch_size, epochs between neighbouring values: paired per-subject difference between "
            "points equal in every other axis, averaged per subject over them, 95% bootstrap interval over subjects"
        ),
    }


def _metric_block(metrics: dict[str, float]) -> dict[str, float]:
    """The reported metrics: :data:`METRIC_NAMES`, then the volume convention and CIs where scored."""
    return {name: float(metrics[name]) for name in (*METRIC_NAMES, *UNCERTAINTY_KEYS) if name in metrics}


def _differences(
    best: PointResult | None, baseline_scores: dict | None, ci: tuple[int, int]
) -> dict[str, dict[str, float]]:
    """``{"best_minus_<baseline>": paired differences}`` where both have per-subject scores."""
    if best is None or not best.scores or not baseline_scores:
        return {}
    return {
        f"best_minus_{name}": paired_differences(best.scores, scores, *ci)
        for name, scores in baseline_scores.items()
        if scores is not None
    }


def best_point(points: list[PointResult]) -> PointResult | None:
    """The grid point with the lowest validation MSE (the report's "best"), None without points."""
    return min(points, key=lambda p: p.val_mse) if points else None


def _best(points: list[PointResult]) -> dict | None:
    best = best_point(points)
    if best is None:
        return None
    return {
        "run_id": best.run_id,
        "model": best.params["model"],
        "name": best.name,
        "params": {k: best.params[k] for k in REQUIRED_AXES},
        "val_mse": best.val_mse,
        **_metric_block(best.metrics),
    }


def _phase(point: PointResult) -> bool:
    return bool(point.params.get("synthetic_phase", False))


def _intensity_block(
    acceleration: float,
    zero_filled: dict,
    cs: dict | None,
    mine: list[PointResult],
    effective: dict | None,
    baseline_scores: dict | None,
    ci: tuple[int, int],
) -> dict:
    block: dict = {
        "acceleration": float(acceleration),
        "zero_filled": _metric_block(zero_filled),
        "best": _best(mine),
        "best_by_model": {
            kind: _best([p for p in mine if p.params["model"] == kind])
            for kind in sorted({p.params["model"] for p in mine})
        },
    }
    if cs is not None:
        block["cs"] = {**_metric_block(cs), "lambda": float(cs["lambda"])}
    if effective is not None:
        block["effective_acceleration"] = effective
    differences = _differences(best_point(mine), baseline_scores, ci)
    if differences:
        block["differences"] = differences
    return block


def metrics_report(
    intensities: dict[str, float],
    zero_filled_metrics: dict[str, dict[str, float]],
    points: list[PointResult],
    cs_metrics: dict[str, dict] | None = None,
    phase_baselines: dict[str, dict] | None = None,
    effective: dict[str, dict] | None = None,
    baseline_scores: dict[str, dict] | None = None,
    ci_seed: int = 0,
    ci_resamples: int = RESAMPLES,
) -> dict:
    """The ``reports/metrics.json`` document (fixed shape; later work only adds keys). Its conventions are a separate
    document (:func:`conventions`), so every value under an intensity is a number or an identifier.

    Args:
        intensities: ``{intensity: nominal acceleration}`` in display order.
        zero_filled_metrics: ``{intensity: metrics}`` of the zero-filled baseline.
        points: results of every evaluated grid point (those trained with synthetic phase go
            to the ``synthetic_phase`` block).
        cs_metrics: ``{intensity: metrics + "lambda"}`` of the compressed-sensing baseline.
        phase_baselines: ``{intensity: {"zero_filled": metrics, "cs": metrics | None}}`` with
            synthetic phase; adds ``"synthetic_phase": {intensity: block}`` of the same shape.
        effective: ``{intensity: {"nominal", "hermitian", "synthetic_phase"}}`` effective
            accelerations (lines known counting Hermitian mirrors, or not).
        baseline_scores: ``{intensity: {"zero_filled": scores, "cs": scores | None}}`` per-subject values
            of the baselines without phase (with phase they come as ``phase_baselines[i]["scores"]``); adds
            ``differences: {"best_minus_zero_filled" | "best_minus_cs": paired differences with CIs}``.
        ci_seed, ci_resamples: seed and resamples of the differences' bootstrap (``evaluate.ci_seed``,
            ``evaluate.ci_resamples``).
    """
    report: dict = {}
    for intensity, acceleration in intensities.items():
        mine = [p for p in points if p.params["intensity"] == intensity and not _phase(p)]
        report[intensity] = _intensity_block(
            acceleration,
            zero_filled_metrics[intensity],
            (cs_metrics or {}).get(intensity),
            mine,
            (effective or {}).get(intensity),
            (baseline_scores or {}).get(intensity),
            (ci_seed, ci_resamples),
        )
    if phase_baselines:
        report["synthetic_phase"] = {
            intensity: _intensity_block(
                acceleration,
                phase_baselines[intensity]["zero_filled"],
                phase_baselines[intensity].get("cs"),
                [p for p in points if p.params["intensity"] == intensity and _phase(p)],
                None,
                phase_baselines[intensity].get("scores"),
                (ci_seed, ci_resamples),
            )
            for intensity, acceleration in intensities.items()
            if intensity in phase_baselines
        }
    return report


#: Top-level keys of a report that are not intensity blocks (``conventions``: in memory, or in an older file).
NOT_INTENSITIES = ("conventions", "synthetic_phase", "findings")


def intensity_blocks(report: dict) -> list[tuple[str, str, dict]]:
    """``(condition, intensity, block)`` for every intensity block of a report, condition being
    ``"magnitude"`` (top level) or ``"synthetic_phase"``."""
    out = [("magnitude", k, v) for k, v in report.items() if k not in NOT_INTENSITIES]
    out += [("synthetic_phase", k, v) for k, v in report.get("synthetic_phase", {}).items()]
    return out


def headline_metrics(report: dict) -> dict[str, float]:
    """The numbers of a report logged to the MLflow parent run: per intensity ``<intensity>_zero_filled_psnr``,
    ``_cs_psnr``, ``_best_psnr``, ``_best_ssim`` (prefix ``phase_<intensity>_`` for the synthetic-phase blocks),
    for the entries the report has."""
    metrics = {}
    for condition, intensity, block in intensity_blocks(report):
        prefix = f"{intensity}_" if condition == "magnitude" else f"phase_{intensity}_"
        metrics[f"{prefix}zero_filled_psnr"] = block["zero_filled"]["psnr"]
        if block.get("cs"):
            metrics[f"{prefix}cs_psnr"] = block["cs"]["psnr"]
        if block["best"]:
            metrics[f"{prefix}best_psnr"] = block["best"]["psnr"]
            metrics[f"{prefix}best_ssim"] = block["best"]["ssim"]
            if "volume_psnr" in block["best"]:
                metrics[f"{prefix}best_volume_psnr"] = block["best"]["volume_psnr"]
        for name, diff in block.get("differences", {}).items():
            metrics[f"{prefix}{name}_psnr"] = diff["psnr"]
    return metrics


def write_grid_csv(
    path: Path,
    points: list[PointResult],
    zero_filled_metrics: dict[str, dict[str, float]],
    phase_zero_filled_metrics: dict[str, dict[str, float]] | None = None,
) -> None:
    """One row per grid point: params, validation MSE, test metrics, PSNR gain over zero-filled
    (``phase_zero_filled_metrics`` for points trained with synthetic phase), diagnostics and the lesion scores
    (``lesion_*``, :func:`mrirecon.evaluation.lesions.flat_metrics`; empty where a point has none)."""
    fields = [
        "name",
        *REQUIRED_AXES,
        "synthetic_phase",
        "acceleration",
        "run_id",
        "val_mse",
        *METRIC_NAMES,
        *UNCERTAINTY_KEYS,
        "zero_filled_psnr",
        "psnr_gain_db",
        *DIAGNOSTICS,
        "wall_time_s",
        *flat_columns([p.lesions for p in points]),
    ]
    rows = []
    for p in points:
        zf = ((phase_zero_filled_metrics or {}) if _phase(p) else zero_filled_metrics)[p.params["intensity"]]
        rows.append(
            {
                "name": p.name,
                **{k: p.params[k] for k in REQUIRED_AXES},
                "synthetic_phase": _phase(p),
                "acceleration": p.acceleration,
                "run_id": p.run_id,
                "val_mse": p.val_mse,
                **p.metrics,
                "zero_filled_psnr": zf["psnr"],
                "psnr_gain_db": p.metrics["psnr"] - zf["psnr"],
                **{k: p.diagnostics.get(k, "") for k in DIAGNOSTICS},
                "wall_time_s": p.wall_time_s,
                **flat_metrics(p.lesions),
            }
        )
    write_csv(path, fields, rows)


def write_plot_data(folder: Path, report: dict, histories: dict[str, dict[str, list[float]]]) -> list[dict]:
    """CSV files for ``dvc plots``: metrics vs acceleration, and per-epoch training curves.

    Returns:
        the metrics-vs-acceleration rows, sorted by acceleration (for the figure).
    """
    by_intensity: dict[str, dict] = {}
    for condition, intensity, block in intensity_blocks(report):
        prefix = "phase_" if condition == "synthetic_phase" else ""
        row = by_intensity.setdefault(intensity, {"intensity": intensity, "acceleration": block["acceleration"]})
        entries = [
            ("zero_filled", block["zero_filled"]),
            ("cs", block.get("cs")),
            ("best", block["best"]),
            *block["best_by_model"].items(),
        ]
        for label, entry in entries:
            if entry:
                row[f"{prefix}{label}_psnr"] = entry["psnr"]
                row[f"{prefix}{label}_ssim"] = entry["ssim"]
    rows = list(by_intensity.values())
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k not in ("intensity", "acceleration"), k))
    rows = sorted(rows, key=lambda r: r["acceleration"])
    write_csv(folder / "metrics_vs_acceleration.csv", columns, rows)
    with atomic_path(folder / "training_curves.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["grid_point", "epoch", "loss", "val_loss"])
        for name, history in histories.items():
            for epoch, (loss, val) in enumerate(zip(history.get("loss", []), history.get("val_loss", [])), start=1):
                writer.writerow([name, epoch, loss, val])
    return rows


def write_metrics_json(path: Path, report: dict) -> None:
    """Write ``metrics.json`` atomically (``inf`` PSNR of a perfect slice is written as a string)."""

    def clean(value):
        if isinstance(value, float) and not np.isfinite(value):
            return str(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean(report), indent=2) + "\n")
