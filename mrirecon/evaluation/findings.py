"""Findings of a grid sweep: the effect of depth, batch size and epochs, and the best configuration per intensity.

Effect of an axis (e.g. ``epochs``) between two neighbouring values ``a -> b`` of it (5 -> 10, then 10 -> 20):
grid points are *matched* on every other axis (model, the other sweep axes, intensity, synthetic phase), so
each pair differs only in that axis. Per test subject, the difference ``b - a`` of its test PSNR (dB) and SSIM
is averaged over the matched pairs (the other axes' combinations), and the mean over subjects gets a 95%
percentile-bootstrap interval with subjects resampled (Efron & Tibshirani 1993, "An Introduction to the
Bootstrap"; :func:`mrirecon.evaluation.uncertainty.paired_difference_ci`). An effect is *resolved* when the
PSNR interval excludes 0. Points trained with synthetic phase are left out (they have their own baselines,
the report's ``synthetic_phase`` blocks); the best configuration is the report's best (lowest validation MSE).

Everything in the ``findings`` block of ``metrics.json`` is a number (DVC turns strings into columns); names
(intensity, model kind, axis, ``<from>_to_<to>``) appear only as keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mrirecon.data.storage import write_csv
from mrirecon.evaluation.report import PointResult, best_point
from mrirecon.evaluation.uncertainty import paired_difference_ci
from mrirecon.grid import GRID_AXES, MODEL_KINDS

#: The axes whose effect is measured, in report order.
SWEEP_AXES = ("layers", "batch_size", "epochs")
#: Metrics whose paired differences are reported (PSNR in dB, SSIM unitless).
EFFECT_METRICS = ("psnr", "ssim")
#: Metrics of the best configuration (test subjects), those the point has.
BEST_METRICS = tuple(f"{m}{side}" for m in ("psnr", "ssim", "volume_psnr") for side in ("", "_ci_low", "_ci_high"))
#: Columns of ``reports/findings.csv`` (:func:`effect_rows`).
FINDINGS_COLUMNS = (
    "intensity",
    "model",
    "axis",
    "from",
    "to",
    "n_pairs",
    "n_subjects",
    "delta_psnr",
    "psnr_ci_low",
    "psnr_ci_high",
    "delta_ssim",
    "ssim_ci_low",
    "ssim_ci_high",
    "resolved",
)


def _key(point: PointResult, axis: str) -> tuple:
    """The values of every grid axis but ``axis``: points with equal keys are matched."""
    return tuple(point.params.get(a, False) for a in GRID_AXES if a != axis)


def axis_effects(
    points: Sequence[PointResult], axis: str, seed: int, resamples: int
) -> dict[str, dict[str, float | int | bool]]:
    """Paired effect of ``axis`` between each pair of neighbouring values of it among ``points``.

    Args:
        points: scored grid points (with per-subject ``scores``) of one intensity and model kind.
        axis: one of :data:`SWEEP_AXES`.
        seed, resamples: bootstrap seed and resamples (``evaluate.ci_seed``, ``evaluate.ci_resamples``).

    Returns:
        ``{"<a>_to_<b>": effect}`` for neighbouring values ``a < b`` with at least one matched pair, each effect
        ``{"from", "to", "n_pairs", "n_subjects", "psnr", "psnr_ci_low", "psnr_ci_high", "ssim", "ssim_ci_low",
        "ssim_ci_high", "resolved"}``: mean over subjects of (value at ``b`` - value at ``a``), averaged per subject
        over the matched pairs, in dB for PSNR; ``resolved`` = the PSNR interval excludes 0. Points without
        per-subject scores are ignored.

    Raises:
        ValueError: if two matched points were scored on different subjects.
    """
    scored = [p for p in points if p.scores]
    by_value: dict = {}
    for p in scored:
        by_value.setdefault(p.params[axis], {})[_key(p, axis)] = p
    values = sorted(by_value)
    effects: dict[str, dict[str, float | int | bool]] = {}
    for low, high in zip(values, values[1:]):
        keys = [k for k in by_value[low] if k in by_value[high]]
        if not keys:
            continue
        pairs = [(by_value[low][k], by_value[high][k]) for k in keys]
        for a, b in pairs:
            if list(a.scores["subjects"]) != list(b.scores["subjects"]):
                raise ValueError(f"{a.name} and {b.name} were scored on different test subjects")
        effect: dict[str, float | int | bool] = {
            "from": low,
            "to": high,
            "n_pairs": len(pairs),
            "n_subjects": len(pairs[0][0].scores["subjects"]),
        }
        for metric in EFFECT_METRICS:
            at_high = np.mean([b.scores[metric] for _, b in pairs], axis=0)
            at_low = np.mean([a.scores[metric] for a, _ in pairs], axis=0)
            ci = paired_difference_ci(at_high, at_low, seed, resamples=resamples)
            effect[metric], effect[f"{metric}_ci_low"], effect[f"{metric}_ci_high"] = (
                ci["mean"],
                ci["ci_low"],
                ci["ci_high"],
            )
        effect["resolved"] = bool(effect["psnr_ci_low"] > 0 or effect["psnr_ci_high"] < 0)
        effects[f"{low}_to_{high}"] = effect
    return effects


def best_configuration(points: Sequence[PointResult]) -> dict[str, dict[str, float]]:
    """The point with the lowest validation MSE as ``{model kind: {layers, batch_size, epochs, val_mse, test
    metrics of :data:`BEST_METRICS` it has (PSNR in dB)}}``; ``{}`` without points."""
    best = best_point(list(points))
    if best is None:
        return {}
    numbers = {axis: best.params[axis] for axis in SWEEP_AXES}
    numbers["val_mse"] = float(best.val_mse)
    numbers.update({m: float(best.metrics[m]) for m in BEST_METRICS if m in best.metrics})
    return {best.params["model"]: numbers}


def findings(intensities: dict[str, float], points: Sequence[PointResult], seed: int, resamples: int) -> dict:
    """The ``findings`` block of ``metrics.json``.

    Args:
        intensities: ``{intensity: nominal acceleration}`` in display order.
        points: every scored grid point (synthetic-phase points are left out).
        seed, resamples: bootstrap seed and resamples (``evaluate.ci_seed``, ``evaluate.ci_resamples``).

    Returns:
        ``{intensity: {"acceleration", "best": best_configuration, "effects": {model kind: {axis: axis_effects}}}}``
        for the intensities with points; a model kind or axis without a matched pair is left out.
    """
    out: dict = {}
    for intensity, acceleration in intensities.items():
        mine = [p for p in points if p.params["intensity"] == intensity and not p.params.get("synthetic_phase")]
        if not mine:
            continue
        effects: dict = {}
        for kind in MODEL_KINDS:
            kind_points = [p for p in mine if p.params["model"] == kind]
            by_axis = {axis: axis_effects(kind_points, axis, seed, resamples) for axis in SWEEP_AXES}
            if any(by_axis.values()):
                effects[kind] = {axis: e for axis, e in by_axis.items() if e}
        out[intensity] = {"acceleration": float(acceleration), "best": best_configuration(mine), "effects": effects}
    return out


def effect_rows(block: dict) -> list[dict]:
    """One row per intensity x model x axis x neighbouring pair of a ``findings`` block, keys
    :data:`FINDINGS_COLUMNS` (``delta_psnr`` in dB)."""
    rows = []
    for intensity, entry in block.items():
        for kind, axes in entry["effects"].items():
            for axis, pairs in axes.items():
                for effect in pairs.values():
                    rows.append(
                        {
                            "intensity": intensity,
                            "model": kind,
                            "axis": axis,
                            **{k: effect[k] for k in ("from", "to", "n_pairs", "n_subjects")},
                            "delta_psnr": effect["psnr"],
                            "psnr_ci_low": effect["psnr_ci_low"],
                            "psnr_ci_high": effect["psnr_ci_high"],
                            "delta_ssim": effect["ssim"],
                            "ssim_ci_low": effect["ssim_ci_low"],
                            "ssim_ci_high": effect["ssim_ci_high"],
                            "resolved": effect["resolved"],
                        }
                    )
    return rows


def write_findings_csv(path: Path, block: dict) -> None:
    """``reports/findings.csv``: :func:`effect_rows` of a ``findings`` block (header only when there are none)."""
    write_csv(path, FINDINGS_COLUMNS, effect_rows(block))


#: Test metrics of each grid point in ``reports/plots/sweep.csv``.
SWEEP_METRICS = (*(f"{m}{side}" for m in EFFECT_METRICS for side in ("", "_ci_low", "_ci_high")), "volume_psnr")
#: Columns of ``reports/plots/sweep.csv`` (:func:`sweep_rows`).
#: Lesion scores of each grid point in ``reports/plots/sweep.csv`` (:mod:`mrirecon.evaluation.lesions`).
SWEEP_LESION_METRICS = ("contrast_recovery", "detectability", "missed")
SWEEP_COLUMNS = (
    "name",
    *GRID_AXES,
    "val_mse",
    *SWEEP_METRICS,
    "train_psnr",
    *(f"lesion_{m}" for m in SWEEP_LESION_METRICS),
)


def sweep_rows(points: Sequence[PointResult]) -> list[dict]:
    """One row per grid point (:data:`SWEEP_COLUMNS`): its axes, validation MSE, test PSNR (dB) and SSIM with
    their 95% intervals, volume PSNR, train PSNR (``diagnostics``) and lesion contrast recovery, detectability and
    missed share (``lesions``); a value a point lacks is left empty."""
    rows = []
    for p in points:
        row: dict = {"name": p.name, **{a: p.params.get(a, False) for a in GRID_AXES}, "val_mse": p.val_mse}
        row.update({c: p.metrics.get(c, "") for c in SWEEP_METRICS})
        row["train_psnr"] = p.diagnostics.get("train_psnr", "")
        row.update({f"lesion_{m}": p.lesions.get(m, "") for m in SWEEP_LESION_METRICS})
        rows.append(row)
    return rows


def write_sweep_csv(path: Path, points: Sequence[PointResult]) -> None:
    """``reports/plots/sweep.csv`` (``dvc plots``: test PSNR against each grid axis)."""
    write_csv(path, SWEEP_COLUMNS, sweep_rows(points))


def swept_axes(points: Sequence[PointResult]) -> list[str]:
    """The :data:`SWEEP_AXES` with at least two values among ``points`` (those a sweep figure is drawn for)."""
    return [axis for axis in SWEEP_AXES if len({p.params[axis] for p in points}) >= 2]
