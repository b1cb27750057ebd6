"""The benchmark table of ``reports/metrics.json``: one set of rows, rendered as markdown (the README block,
the Prefect summary artifact) or as a terminal table by the CLI (``mrirecon show``).

Rows per intensity and k-space simulation: zero-filled, compressed sensing, the best network and the best
of each model kind; columns PSNR (dB), SSIM, NMSE on the test subjects (and the PSNR gain over zero-filled).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mrirecon.evaluation.report import PointResult, intensity_blocks
from mrirecon.grid import REQUIRED_AXES

START, END = "<!-- benchmark-table:start -->", "<!-- benchmark-table:end -->"

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


def update_readme(readme: Path, table: str) -> bool:
    """Replace the text between the benchmark-table markers of ``readme`` with ``table``.

    Returns:
        True if the file changed.

    Raises:
        ValueError: if the markers are missing.
    """
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no {START} ... {END} markers")
    new = pattern.sub(lambda _: f"{START}\n{table}\n{END}", text)
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
