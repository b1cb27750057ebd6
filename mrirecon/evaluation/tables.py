"""The tables of ``reports/metrics.json``: one set of rows each, rendered as markdown (the README blocks, the
Prefect artifacts) or as a terminal table by the CLI (``mrirecon show``).

Benchmark: rows per intensity and k-space simulation: zero-filled, compressed sensing, the best network and the
best of each model kind; columns PSNR (dB), SSIM, NMSE on the test subjects (and the PSNR gain over zero-filled).
Findings (:mod:`mrirecon.evaluation.findings`): the best configuration per intensity, and the paired effect of
each grid axis between neighbouring values with its 95% bootstrap interval.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mrirecon.evaluation.findings import effect_rows
from mrirecon.evaluation.report import PointResult, intensity_blocks
from mrirecon.grid import REQUIRED_AXES

START, END = "<!-- benchmark-table:start -->", "<!-- benchmark-table:end -->"
FINDINGS_START, FINDINGS_END = "<!-- findings-table:start -->", "<!-- findings-table:end -->"
LESION_START, LESION_END = "<!-- lesion-table:start -->", "<!-- lesion-table:end -->"

#: How each column of :func:`benchmark_rows` is written; a missing value (None) is written ``-``.
FORMATS = {
    "k-space": "{}",
    "intensity": "{}",
    "R": "{:g}",
    "method": "{}",
    "PSNR (dB)": "{:.2f}",
    "95% CI": "[{:.2f}, {:.2f}]",
    "volume PSNR (dB)": "{:.2f}",
    "SSIM": "{:.3f}",
    "NMSE": "{:.4f}",
    "gain (dB)": "{:+.2f}",
    "model": "{}",
    "layers": "{:g}",
    "batch size": "{:g}",
    "epochs": "{:g}",
    "axis": "{}",
    "change": "{}",
    "pairs": "{:g}",
    "ΔPSNR (dB)": "{:+.2f}",
    "ΔSSIM": "{:+.3f}",
    "ΔSSIM 95% CI": "[{:+.3f}, {:+.3f}]",
    "resolved": "{}",
    "contrast recovery": "{:.2f}",
    "CR smallest": "{:.2f}",
    "d' (median)": "{:.1f}",
    "missed": "{:.0%}",
    "smallest detected (px)": "{:g}",
    "spill": "{:.3f}",
    "false edges": "{:.3f}",
}
#: Columns of the README table.
BENCHMARK_COLUMNS = ("k-space", "intensity", "R", "method", "PSNR (dB)", "95% CI", "SSIM", "NMSE", "volume PSNR (dB)")
#: Columns of the CLI and Prefect tables: the README's plus the PSNR gain over zero-filled.
SUMMARY_COLUMNS = (*BENCHMARK_COLUMNS, "gain (dB)")
KSPACE = {"magnitude": "magnitude (Hermitian)", "synthetic_phase": "synthetic phase"}
FOOTNOTE = (
    "Test subjects only; per slice, then mean. PSNR data_range = reference slice max; SSIM 7x7 "
    "uniform window (skimage); best = lowest validation MSE. 95% CI: bootstrap over test subjects. Volume PSNR: "
    "fastMRI convention (per subject, the subject's maximum as data range)."
)


def benchmark_rows(report: dict) -> list[dict]:
    """One row per k-space simulation, intensity and method of a metrics report (see module docstring).

    Returns:
        dicts with the keys of :data:`FORMATS`: ``R`` the nominal acceleration, ``PSNR (dB)``, ``SSIM``,
        ``NMSE`` the test metrics, ``gain (dB)`` = PSNR - zero-filled PSNR (None on the zero-filled row). A PSNR
        read back from ``metrics.json`` as the string ``"inf"`` (identical images) becomes ``float("inf")``.
    """
    rows = []
    for condition, intensity, block in intensity_blocks(report):
        entries = [("zero-filled", block["zero_filled"]), ("CS (L1-wavelet)", block.get("cs"))]
        if block.get("best"):
            entries.append((f"best: {block['best']['name']}", block["best"]))
        for kind, entry in block.get("best_by_model", {}).items():
            if entry and block.get("best") and entry["run_id"] != block["best"]["run_id"]:
                entries.append((f"best {kind}: {entry['name']}", entry))
        zf_psnr = float(block["zero_filled"]["psnr"])
        for name, entry in entries:
            if entry:
                psnr = float(entry["psnr"])
                rows.append(
                    {
                        "k-space": KSPACE[condition],
                        "intensity": intensity,
                        "R": block["acceleration"],
                        "method": name,
                        "PSNR (dB)": psnr,
                        "95% CI": (entry["psnr_ci_low"], entry["psnr_ci_high"]) if "psnr_ci_low" in entry else None,
                        "volume PSNR (dB)": entry.get("volume_psnr"),
                        "SSIM": entry["ssim"],
                        "NMSE": entry["nmse"],
                        "gain (dB)": None if name == "zero-filled" else psnr - zf_psnr,
                    }
                )
    return rows


def format_row(row: dict, columns: Sequence[str] = BENCHMARK_COLUMNS) -> list[str]:
    """The cells of one row of :func:`benchmark_rows` as text (:data:`FORMATS`)."""

    def cell(column: str) -> str:
        value = row.get(column)
        if value is None:
            return "-"
        if isinstance(value, tuple):
            return FORMATS[column].format(*map(float, value))
        return FORMATS[column].format(float(value) if FORMATS[column] != "{}" else value)

    return [cell(column) for column in columns]


def markdown_table(rows: list[dict], columns: Sequence[str] = BENCHMARK_COLUMNS) -> str:
    """A markdown table of :func:`benchmark_rows` with the given columns."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_row(row, columns)) + " |" for row in rows]
    return "\n".join(lines)


def footnote(report: dict) -> str:
    """Conventions under the table: test subjects, per-slice means, PSNR/SSIM data range, best, tolerance."""
    conv = report.get("conventions", {})
    tolerance = f" Tolerance of % correct: {conv['pct_correct_tolerance']}." if "pct_correct_tolerance" in conv else ""
    return FOOTNOTE + tolerance


def benchmark_table(report: dict, title: str = "") -> str:
    """Markdown table of a metrics report (see module docstring), conventions as a footnote."""
    lines = [title, ""] if title else []
    lines += [markdown_table(benchmark_rows(report)), "", footnote(report)]
    return "\n".join(lines)


def update_readme(readme: Path, table: str, markers: tuple[str, str] = (START, END)) -> bool:
    """Replace the text between a pair of ``markers`` of ``readme`` (default: the benchmark table's;
    :data:`FINDINGS_START`, :data:`FINDINGS_END` for the findings) with ``table``.

    Returns:
        True if the file changed.

    Raises:
        ValueError: if the markers are missing.
    """
    start, end = markers
    text = readme.read_text()
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no {start} ... {end} markers")
    new = pattern.sub(lambda _: f"{start}\n{table}\n{end}", text)
    if new != text:
        readme.write_text(new)
    return new != text


def grid_rows(report: dict, results: list[PointResult]) -> list[dict]:
    """One row per scored grid point (Prefect table artifact): grid parameters, validation MSE, test metrics,
    PSNR gain over its zero-filled baseline (with synthetic phase for points trained with it), diagnostics."""

    def zero_filled_psnr(r: PointResult) -> float:
        blocks = report.get("synthetic_phase", {}) if r.params.get("synthetic_phase") else report
        return float(blocks[r.params["intensity"]]["zero_filled"]["psnr"])

    return [
        {
            "grid point": r.name,
            **{k: r.params[k] for k in REQUIRED_AXES},
            "val MSE": round(r.val_mse, 6),
            "test PSNR (dB)": round(r.metrics["psnr"], 2),
            "gain over zero-filled (dB)": round(r.metrics["psnr"] - zero_filled_psnr(r), 2),
            "test SSIM": round(r.metrics["ssim"], 4),
            "test NMSE": round(r.metrics["nmse"], 5),
            "train-test PSNR gap (dB)": round(r.diagnostics["psnr_gap_db"], 2) if r.diagnostics else None,
            "noisy test PSNR (dB)": round(r.diagnostics["noisy_psnr"], 2) if r.diagnostics else None,
            "MLflow run": r.run_id,
        }
        for r in results
    ]


def summary_markdown(report: dict, results: list[PointResult], reports: Path) -> str:
    """The run summary (Prefect markdown artifact): the benchmark rows with the gain over zero-filled, which
    grid points overfit, and the figures under ``reports/figures``."""
    lines = [
        "# mrirecon: best configuration per intensity",
        "",
        "Best = lowest validation MSE; metrics on test subjects (mean over slices, PSNR range = slice max).",
        "",
        markdown_table(benchmark_rows(report), SUMMARY_COLUMNS),
    ]
    overfit = [r for r in results if r.diagnostics.get("overfit")]
    lines += [
        "",
        "## Overfitting and robustness",
        "",
        "Train-test gap = PSNR on the point's training subjects minus PSNR on test subjects; "
        "noisy = test PSNR with complex Gaussian k-space noise added.",
        "",
    ]
    if overfit:
        lines += [
            f"- **{r.name}** overfits: gap {r.diagnostics['psnr_gap_db']:.2f} dB "
            f"(test/train MSE ratio {r.diagnostics['mse_ratio']:.2f})"
            for r in overfit
        ]
    elif any(r.diagnostics for r in results):
        worst = max((r for r in results if r.diagnostics), key=lambda r: r.diagnostics["psnr_gap_db"])
        lines.append(f"No grid point overfits (largest gap: {worst.name}, {worst.diagnostics['psnr_gap_db']:.2f} dB).")
    figures = sorted((reports / "figures").glob("*.png"))
    lines += ["", "Figures:", *[f"- `{path}`" for path in figures], "", f"Reports: `{reports}`"]
    return "\n".join(lines)


#: Columns of the findings' best-configuration table (:func:`findings_best_rows`).
BEST_COLUMNS = (
    "intensity",
    "R",
    "model",
    "layers",
    "batch size",
    "epochs",
    "PSNR (dB)",
    "95% CI",
    "SSIM",
    "volume PSNR (dB)",
)
#: Columns of the findings' effect table (:func:`findings_effect_rows`).
EFFECT_COLUMNS = (
    "intensity",
    "model",
    "axis",
    "change",
    "pairs",
    "ΔPSNR (dB)",
    "95% CI",
    "ΔSSIM",
    "ΔSSIM 95% CI",
    "resolved",
)
FINDINGS_FOOTNOTE = (
    "Test subjects, per-slice convention. Effect of an axis between neighbouring values: paired per-subject "
    "difference (later value minus earlier) between grid points equal in every other axis, averaged per subject "
    "over those pairs; 95% CI: bootstrap over test subjects (Efron & Tibshirani 1993); resolved = the PSNR "
    "interval excludes 0. Best = lowest validation MSE."
)


def findings_best_rows(report: dict) -> list[dict]:
    """One row per intensity of the report's ``findings``: its best configuration and test metrics
    (keys :data:`BEST_COLUMNS`; PSNR in dB); none without findings."""
    rows = []
    for intensity, entry in report.get("findings", {}).items():
        for kind, best in entry["best"].items():
            rows.append(
                {
                    "intensity": intensity,
                    "R": entry["acceleration"],
                    "model": kind,
                    "layers": best["layers"],
                    "batch size": best["batch_size"],
                    "epochs": best["epochs"],
                    "PSNR (dB)": best.get("psnr"),
                    "95% CI": (best["psnr_ci_low"], best["psnr_ci_high"]) if "psnr_ci_low" in best else None,
                    "SSIM": best.get("ssim"),
                    "volume PSNR (dB)": best.get("volume_psnr"),
                }
            )
    return rows


def findings_effect_rows(report: dict) -> list[dict]:
    """One row per intensity x model x axis x neighbouring pair of the report's ``findings``
    (:func:`mrirecon.evaluation.findings.effect_rows`), keys :data:`EFFECT_COLUMNS`."""
    return [
        {
            "intensity": row["intensity"],
            "model": row["model"],
            "axis": row["axis"],
            "change": f"{row['from']} → {row['to']}",
            "pairs": row["n_pairs"],
            "ΔPSNR (dB)": row["delta_psnr"],
            "95% CI": (row["psnr_ci_low"], row["psnr_ci_high"]),
            "ΔSSIM": row["delta_ssim"],
            "ΔSSIM 95% CI": (row["ssim_ci_low"], row["ssim_ci_high"]),
            "resolved": "yes" if row["resolved"] else "no",
        }
        for row in effect_rows(report.get("findings", {}))
    ]


def findings_markdown(report: dict) -> str:
    """The findings as markdown: the best configuration per intensity, the effect of each axis, the footnote
    (:data:`FINDINGS_FOOTNOTE`); empty when the report has no findings."""
    best, effects = findings_best_rows(report), findings_effect_rows(report)
    if not best:
        return ""
    lines = ["Best configuration per intensity (test subjects):", "", markdown_table(best, BEST_COLUMNS), ""]
    if effects:
        lines += ["Effect of each grid axis (paired, test subjects):", "", markdown_table(effects, EFFECT_COLUMNS)]
    else:
        lines.append("No grid axis has two values: no effects to show.")
    return "\n".join([*lines, "", FINDINGS_FOOTNOTE])


#: Columns of the lesion table (:func:`lesion_rows`).
LESION_COLUMNS = (
    "intensity",
    "R",
    "method",
    "contrast recovery",
    "CR smallest",
    "d' (median)",
    "missed",
    "smallest detected (px)",
    "spill",
    "false edges",
)
LESION_FOOTNOTE = (
    "Synthetic lesions inserted into test slices before k-space simulation (README: Lesions and hallucinations). "
    "Contrast recovery (CR): reconstructed over inserted lesion contrast, mean over lesions (CR smallest: the "
    "smallest diameter); d': Rose/matched-filter detectability against the lesion-free error around the lesion; "
    "missed: d' below the threshold; smallest detected: smallest diameter from which on every size is reliably "
    "detected (- = none); spill and false edges: hallucination scores. Best = lowest validation MSE."
)


def lesion_rows(report: dict) -> list[dict]:
    """One row per intensity and method (zero-filled, CS, best) of the report's ``lesions`` blocks, keys
    :data:`LESION_COLUMNS` (the best network named by its grid point); none without lesion blocks."""
    names = {"zero_filled": "zero-filled", "cs": "CS (L1-wavelet)", "best": "best network"}
    rows = []
    for condition, intensity, block in intensity_blocks(report):
        for method, entry in block.get("lesions", {}).items() if condition == "magnitude" else ():
            if not entry:
                continue
            name = names[method]
            if method == "best" and block.get("best"):
                name = f"best: {block['best']['name']}"
            by_size = entry["by_diameter"]
            smallest = min(by_size, key=lambda d: float(d.removesuffix("px"))) if by_size else None
            rows.append(
                {
                    "intensity": intensity,
                    "R": block["acceleration"],
                    "method": name,
                    "contrast recovery": entry["contrast_recovery"],
                    "CR smallest": by_size[smallest]["contrast_recovery"] if smallest else None,
                    "d' (median)": entry["detectability"],
                    "missed": entry["missed"],
                    "smallest detected (px)": entry["smallest_detected_px"],
                    "spill": entry["spill"],
                    "false edges": entry["false_edges"],
                }
            )
    return rows


def lesion_markdown(report: dict) -> str:
    """The lesion table as markdown with its footnote (:data:`LESION_FOOTNOTE`); empty without lesion blocks."""
    rows = lesion_rows(report)
    return "\n".join([markdown_table(rows, LESION_COLUMNS), "", LESION_FOOTNOTE]) if rows else ""
