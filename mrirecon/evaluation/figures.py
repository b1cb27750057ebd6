"""Figures (matplotlib, Agg backend): reconstruction panels, metrics vs acceleration, metrics vs each grid axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mrirecon.data.slice_set import SliceSet  # noqa: E402
from mrirecon.data.storage import atomic_path  # noqa: E402
from mrirecon.evaluation.findings import SWEEP_AXES  # noqa: E402
from mrirecon.evaluation.report import PointResult, best_point, figure_indices  # noqa: E402


def reconstruction_panel(
    reference: np.ndarray,
    zero_filled: np.ndarray,
    recon: np.ndarray,
    title: str,
    labels: list[str] | None = None,
    cs: np.ndarray | None = None,
) -> plt.Figure:
    """Rows = slices; columns = reference, zero-filled, (CS,) reconstruction, |error| x 5.

    The error map (reconstruction minus reference, absolute, colour scale 1/5 of the slice
    maximum) shows where the network departs from the truth: structure that appears in it
    but not in the zero-filled image's aliasing is hallucinated.

    Args:
        reference, zero_filled, recon: float ``(K, H, W)`` magnitude slices.
        title: figure title.
        labels: one row label per slice (e.g. subject and slice index).
        cs: optional ``(K, H, W)`` compressed-sensing reconstructions, shown as a column.
    """
    k = reference.shape[0]
    n_cols = 5 if cs is not None else 4
    fig, axes = plt.subplots(k, n_cols, figsize=(2.5 * n_cols, 2.6 * k), squeeze=False)
    for row in range(k):
        vmax = float(reference[row].max())
        error = np.abs(recon[row] - reference[row])
        panels = [(reference[row], "reference"), (zero_filled[row], "zero-filled")]
        if cs is not None:
            panels.append((cs[row], "CS (L1-wavelet)"))
        panels += [(recon[row], "reconstruction"), (error, "|error| x5")]
        for col, (image, name) in enumerate(panels):
            ax = axes[row, col]
            is_error = col == len(panels) - 1
            ax.imshow(image, cmap="inferno" if is_error else "gray", vmin=0, vmax=vmax / 5 if is_error else vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
        if labels:
            axes[row, 0].set_ylabel(labels[row], fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def figure_slices_panel(
    test: SliceSet, count: int, zero_filled: np.ndarray, recon: np.ndarray, title: str, cs: np.ndarray | None = None
) -> plt.Figure:
    """:func:`reconstruction_panel` of the ``count`` fixed figure slices of a test set
    (:func:`mrirecon.evaluation.report.figure_indices`), each row labelled ``"<subject> z=<axial slice index>"``.

    Args:
        test: the test slices (references and labels).
        count: slices shown (``evaluate.figure_slices``).
        zero_filled, recon, cs: float ``(K, H, W)`` magnitudes of the K figure slices (``cs`` optional).
        title: figure title.
    """
    shown = figure_indices(len(test), count)
    labels = [f"{test.subjects[i]} z={test.slice_index[i]}" for i in shown]
    return reconstruction_panel(test.images[shown], zero_filled, recon, title, labels, cs=cs)


def metrics_vs_acceleration(rows: list[dict]) -> plt.Figure:
    """PSNR and SSIM vs nominal acceleration for zero-filled and the best networks.

    Args:
        rows: dicts with ``acceleration`` and ``<method>_psnr`` / ``<method>_ssim`` keys.
    """
    rows = sorted(rows, key=lambda r: r["acceleration"])
    methods = sorted({k[: -len("_psnr")] for r in rows for k in r if k.endswith("_psnr")})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for metric, ax, unit in (("psnr", axes[0], "PSNR (dB)"), ("ssim", axes[1], "SSIM")):
        for method in methods:
            pts = [(r["acceleration"], r[f"{method}_{metric}"]) for r in rows if f"{method}_{metric}" in r]
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, marker="o", label=method.replace("_", " "))
        ax.set_xlabel("acceleration R")
        ax.set_ylabel(unit)
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Test subjects: reconstruction quality vs acceleration")
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, dict[str, list[float]]]) -> plt.Figure:
    """Validation loss per epoch, one line per grid point (a shared training's points overlap up to their epochs).

    Args:
        histories: ``{grid point name: {"loss": [...], "val_loss": [...]}}`` (loss: MSE in the model's output units).
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, history in sorted(histories.items()):
        values = history.get("val_loss", [])
        if values:
            ax.plot(range(1, len(values) + 1), values, marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if histories:
        ax.legend(fontsize=6, ncol=2 if len(histories) > 12 else 1, loc="upper right")
    ax.set_title("Validation loss per epoch, one line per grid point")
    fig.tight_layout()
    return fig


def metric_vs_axes(rows: list[dict], metric: str, axes_names: list[str]) -> plt.Figure:
    """One panel per grid axis: ``metric`` of every run against that axis, coloured by intensity.

    Args:
        rows: dicts with the axis values and ``metric`` (runs lacking it are skipped).
        metric: e.g. ``test_psnr``.
        axes_names: grid axes to plot, e.g. ``["model", "layers", "batch_size", "epochs"]``.
    """
    rows = [r for r in rows if r.get(metric) is not None]
    intensities = sorted({str(r.get("intensity")) for r in rows})
    fig, axes = plt.subplots(1, len(axes_names), figsize=(4 * len(axes_names), 3.6), squeeze=False)
    for ax, axis in zip(axes[0], axes_names):
        values = sorted({str(r.get(axis)) for r in rows}, key=lambda v: (len(v), v))
        for offset, intensity in enumerate(intensities):
            pts = [(values.index(str(r.get(axis))), r[metric]) for r in rows if str(r.get("intensity")) == intensity]
            if pts:
                x, y = zip(*pts)
                jitter = (offset - (len(intensities) - 1) / 2) * 0.08
                ax.scatter(np.array(x) + jitter, y, label=intensity, s=18)
        ax.set_xticks(range(len(values)), values)
        ax.set_xlabel(axis)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, title="intensity")
    fig.tight_layout()
    return fig


def best_slice(points: Sequence[PointResult], axis: str) -> list[PointResult]:
    """The grid points of one intensity on the line through its best configuration along ``axis``.

    Best = lowest validation MSE among the points of model kinds with at least two values of ``axis``; the line
    holds the model kind and the other :data:`~mrirecon.evaluation.findings.SWEEP_AXES` at the best's values.

    Returns:
        those points sorted by ``axis`` (empty when no model kind sweeps ``axis``).
    """
    kinds = {
        k
        for k in {p.params["model"] for p in points}
        if len({p.params[axis] for p in points if p.params["model"] == k}) > 1
    }
    best = best_point([p for p in points if p.params["model"] in kinds])
    if best is None:
        return []
    fixed = {a: best.params[a] for a in ("model", *SWEEP_AXES) if a != axis}
    return sorted((p for p in points if all(p.params[a] == v for a, v in fixed.items())), key=lambda p: p.params[axis])


def sweep_figure(points: Sequence[PointResult], axis: str) -> plt.Figure:
    """Test PSNR (dB) and SSIM against one grid axis, one line per intensity, with 95% CI bands.

    Each intensity's line is :func:`best_slice`: the slice through its best configuration, the other axes held
    at the best's values (named in the legend). The band is the point's 95% bootstrap interval over test subjects
    (``psnr_ci_low`` / ``psnr_ci_high``; Efron & Tibshirani 1993). Against ``epochs`` (the learning curve) the
    train PSNR (``diagnostics["train_psnr"]``, the point's training subjects) is drawn dashed where known: a gap
    that widens with epochs is over-fitting. Points trained with synthetic phase are left out.

    Args:
        points: scored grid points of every intensity.
        axis: one of :data:`~mrirecon.evaluation.findings.SWEEP_AXES`.
    """
    points = [p for p in points if not p.params.get("synthetic_phase")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for intensity in dict.fromkeys(p.params["intensity"] for p in points):
        line = best_slice([p for p in points if p.params["intensity"] == intensity], axis)
        if len(line) < 2:
            continue
        x = [p.params[axis] for p in line]
        fixed = ", ".join(f"{a}={line[0].params[a]}" for a in ("model", *SWEEP_AXES) if a != axis)
        for ax, metric in zip(axes, ("psnr", "ssim")):
            (handle,) = ax.plot(x, [p.metrics[metric] for p in line], marker="o", label=f"{intensity} ({fixed})")
            if all(f"{metric}_ci_low" in p.metrics for p in line):
                low = [p.metrics[f"{metric}_ci_low"] for p in line]
                high = [p.metrics[f"{metric}_ci_high"] for p in line]
                ax.fill_between(x, low, high, color=handle.get_color(), alpha=0.2, linewidth=0)
            if metric == "psnr" and axis == "epochs" and all("train_psnr" in p.diagnostics for p in line):
                train = [p.diagnostics["train_psnr"] for p in line]
                ax.plot(x, train, linestyle="--", color=handle.get_color(), label=f"{intensity} train")
    psnr_label = "PSNR (dB); dashed: train" if axis == "epochs" else "test PSNR (dB)"
    for ax, unit in zip(axes, (psnr_label, "test SSIM")):
        ax.set_xlabel(axis)
        ax.set_ylabel(unit)
        ax.set_xticks(sorted({p.params[axis] for p in points}))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(
        f"Test subjects: quality vs {axis} (95% CI bands)\n"
        "slice through each intensity's best configuration (lowest validation MSE), other axes fixed at its values",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: Path, dpi: int = 100) -> None:
    """Save as PNG atomically and close the figure."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
