"""Evaluation on test subjects: network vs zero-filled metrics, best-model choice, reports.

Best model per intensity = lowest *validation* MSE among that intensity's grid points; its
*test* metrics are reported (choosing on test would leak). Metric conventions:
:data:`mrirecon.metrics.CONVENTIONS`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import SliceSet
from .kspace import zero_filled
from .metrics import CONVENTIONS, METRIC_NAMES, mean_metrics
from .storage import atomic_path

GRID_PARAMS = ("model", "layers", "batch_size", "epochs", "intensity")


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


def zero_filled_images(data: SliceSet) -> np.ndarray:
    """Zero-filled magnitude reconstructions ``|F^-1(M F(x))|``, float32 ``(N, H, W)``."""
    return zero_filled(data.images, data.masks[:, None, :])


def figure_indices(n: int, count: int) -> list[int]:
    """Fixed slice positions shown in figures: ``count`` evenly spaced of ``n`` (stable order)."""
    return sorted({int(i) for i in np.linspace(0, n - 1, min(count, n))})


def conventions(tolerance: float) -> dict:
    """The ``conventions`` block of ``metrics.json``."""
    return {
        **CONVENTIONS,
        "pct_correct_tolerance": tolerance,
        "best": "per intensity, the grid point with the lowest validation MSE (image domain); test metrics reported",
        "split": "test subjects only; train/validation/test are disjoint sets of subjects",
    }


def _metric_block(metrics: dict[str, float]) -> dict[str, float]:
    return {name: float(metrics[name]) for name in METRIC_NAMES}


def _best(points: list[PointResult]) -> dict | None:
    if not points:
        return None
    best = min(points, key=lambda p: p.val_mse)
    return {
        "run_id": best.run_id, "model": best.params["model"], "name": best.name,
        "params": {k: best.params[k] for k in GRID_PARAMS}, "val_mse": best.val_mse,
        **_metric_block(best.metrics),
    }


def metrics_report(
    intensities: dict[str, float],
    zero_filled_metrics: dict[str, dict[str, float]],
    points: list[PointResult],
    tolerance: float,
) -> dict:
    """The ``reports/metrics.json`` document (fixed shape; later work only adds keys).

    Args:
        intensities: ``{intensity: nominal acceleration}`` in display order.
        zero_filled_metrics: ``{intensity: metrics}`` of the zero-filled baseline.
        points: results of every evaluated grid point.
        tolerance: ``pct_correct`` tolerance.
    """
    report: dict = {"conventions": conventions(tolerance)}
    for intensity, acceleration in intensities.items():
        mine = [p for p in points if p.params["intensity"] == intensity]
        report[intensity] = {
            "acceleration": float(acceleration),
            "zero_filled": _metric_block(zero_filled_metrics[intensity]),
            "best": _best(mine),
            "best_by_model": {
                kind: _best([p for p in mine if p.params["model"] == kind])
                for kind in sorted({p.params["model"] for p in mine})
            },
        }
    return report


def write_grid_csv(path: Path, points: list[PointResult], zero_filled_metrics: dict[str, dict[str, float]]) -> None:
    """One row per grid point: params, validation MSE, test metrics and PSNR gain over zero-filled."""
    fields = ["name", *GRID_PARAMS, "acceleration", "run_id", "val_mse", *METRIC_NAMES,
              "zero_filled_psnr", "psnr_gain_db", "wall_time_s"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for p in points:
            zf = zero_filled_metrics[p.params["intensity"]]
            writer.writerow({
                "name": p.name, **{k: p.params[k] for k in GRID_PARAMS}, "acceleration": p.acceleration,
                "run_id": p.run_id, "val_mse": p.val_mse, **p.metrics,
                "zero_filled_psnr": zf["psnr"], "psnr_gain_db": p.metrics["psnr"] - zf["psnr"],
                "wall_time_s": p.wall_time_s,
            })


def write_plot_data(folder: Path, report: dict, histories: dict[str, dict[str, list[float]]]) -> None:
    """CSV files for ``dvc plots``: metrics vs acceleration, and per-epoch training curves."""
    rows = []
    for intensity, block in report.items():
        if intensity == "conventions":
            continue
        row = {"intensity": intensity, "acceleration": block["acceleration"],
               "zero_filled_psnr": block["zero_filled"]["psnr"], "zero_filled_ssim": block["zero_filled"]["ssim"]}
        for label, entry in [("best", block["best"]), *block["best_by_model"].items()]:
            if entry:
                row[f"{label}_psnr"] = entry["psnr"]
                row[f"{label}_ssim"] = entry["ssim"]
        rows.append(row)
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k not in ("intensity", "acceleration"), k))
    with atomic_path(folder / "metrics_vs_acceleration.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["acceleration"]))
    with atomic_path(folder / "training_curves.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["grid_point", "epoch", "loss", "val_loss"])
        for name, history in histories.items():
            for epoch, (loss, val) in enumerate(zip(history.get("loss", []), history.get("val_loss", [])), start=1):
                writer.writerow([name, epoch, loss, val])


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


def evaluate_images(reference: np.ndarray, estimate: np.ndarray, tolerance: float) -> dict[str, float]:
    """Mean per-slice metrics of a reconstruction stack (see :func:`mrirecon.metrics.mean_metrics`)."""
    return mean_metrics(reference, estimate, tolerance)


def load_trained_model(model_dir: Path):
    """Rebuild a grid point's network from ``spec.json`` and load ``model.weights.h5``.

    Returns:
        ``(keras.Model, spec dict)``.

    Raises:
        FileNotFoundError: if the folder lacks the spec or the weights.
    """
    from .grid import GridPoint
    from .training import ModelSettings, build_model

    spec = json.loads((model_dir / "spec.json").read_text())
    model = build_model(GridPoint(**spec["point"]), spec["size"], ModelSettings(**spec["settings"]))
    model.load_weights(model_dir / "model.weights.h5")
    return model, spec
