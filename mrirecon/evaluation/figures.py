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
from mrirecon.evaluation.lesions import LesionCheck  # noqa: E402
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


def lesion_figure(check: LesionCheck, best_name: str | None, best_shown: tuple | None, title: str) -> plt.Figure:
    """The lesion check on one test slice: top row the lesion-inserted reference, zero-filled, CS and best
    reconstructions with every lesion circled (diameter in pixels written beside it); bottom row the inserted lesion
    image and each method's ``recon(with) - recon(without)`` (what it made of the lesions; anything away from the
    circles is spill), on one symmetric colour scale.

    Args:
        check: the baselines' lesion check (:class:`mrirecon.evaluation.lesions.LesionCheck`).
        best_name, best_shown: the best grid point's name and ``(with, without)`` reconstructions of the slice
            (:attr:`mrirecon.evaluation.report.PointResult.lesion_shown`), or None.
        title: figure title.
    """
    i = check.shown_slice
    inserted = check.lesions
    reference = inserted.data.images[i]
    columns = [("reference + lesions", reference, inserted.delta[i])]
    for name, label in (("zero_filled", "zero-filled"), ("cs", "CS (L1-wavelet)")):
        if name in check.shown:
            with_lesions, without = check.shown[name]
            columns.append((label, with_lesions, with_lesions.astype(np.float64) - without))
    if best_shown is not None:
        columns.append((f"best: {best_name}", best_shown[0], best_shown[0].astype(np.float64) - best_shown[1]))
    fig, axes = plt.subplots(2, len(columns), figsize=(2.8 * len(columns), 5.8), squeeze=False)
    vmax = float(reference.max())
    dmax = float(np.abs(inserted.delta[i]).max()) or 1.0
    mine = [lesion for lesion in inserted.lesions if lesion.slice == i]
    for col, (label, image, difference) in enumerate(columns):
        axes[0, col].imshow(image, cmap="gray", vmin=0, vmax=vmax)
        axes[1, col].imshow(difference, cmap="coolwarm", vmin=-dmax, vmax=dmax)
        axes[0, col].set_title(label, fontsize=8)
        axes[1, col].set_title("inserted lesions" if col == 0 else "with - without", fontsize=8)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
            for lesion in mine:
                circle = plt.Circle((lesion.col, lesion.row), lesion.outer_radius + 1.5, fill=False, lw=0.7)
                circle.set_edgecolor("lime" if lesion.contrast > 0 else "cyan")
                ax.add_patch(circle)
        for lesion in mine:
            where = (lesion.col + lesion.outer_radius + 2, lesion.row)
            axes[0, col].annotate(f"{lesion.diameter_px:g}", where, color="yellow", fontsize=6)
    subject, z = inserted.data.subjects[i], inserted.data.slice_index[i]
    fig.suptitle(f"{title}\n{subject} z={z}; circles: green bright, cyan dark; numbers: diameter (pixels)", fontsize=9)
    fig.tight_layout()
    return fig


def lesion_sweep_figure(points: Sequence[PointResult], axes_names: Sequence[str]) -> plt.Figure:
    """Lesion contrast recovery (mean over lesions) against each of ``axes_names`` (e.g. ``layers``, ``epochs``),
    one line per intensity through its best configuration (:func:`best_slice`): does a deeper or longer-trained
    network erase small lesions? Dashed: the smallest diameter's recovery. Points without lesion scores or trained
    with synthetic phase are left out.
    """
    points = [p for p in points if p.lesions and not p.params.get("synthetic_phase")]
    fig, axes = plt.subplots(1, len(axes_names), figsize=(5.5 * len(axes_names), 4.2), squeeze=False)
    for ax, axis in zip(axes[0], axes_names):
        for intensity in dict.fromkeys(p.params["intensity"] for p in points):
            line = best_slice([p for p in points if p.params["intensity"] == intensity], axis)
            if len(line) < 2:
                continue
            x = [p.params[axis] for p in line]
            (handle,) = ax.plot(x, [p.lesions["contrast_recovery"] for p in line], marker="o", label=intensity)
            smallest = min(line[0].lesions["by_diameter"], key=lambda d: float(d.removesuffix("px")))
            if all(smallest in p.lesions["by_diameter"] for p in line):
                small = [p.lesions["by_diameter"][smallest]["contrast_recovery"] for p in line]
                ax.plot(x, small, linestyle="--", color=handle.get_color(), label=f"{intensity}, {smallest} lesions")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel(axis)
        ax.set_ylabel("lesion contrast recovery")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Test lesions: contrast recovery vs depth and training (1 = kept, 0 = erased)", fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: Path, dpi: int = 100) -> None:
    """Save as PNG atomically and close the figure."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
