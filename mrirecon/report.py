"""The benchmark table: ``reports/metrics.json`` -> a markdown table, kept in the README.

Rows per intensity and k-space simulation: zero-filled, compressed sensing, the best network
and the best of each model kind; columns PSNR (dB), SSIM, NMSE on the test subjects.
"""

from __future__ import annotations

import re
from pathlib import Path

from .evaluation import intensity_blocks

START, END = "<!-- benchmark-table:start -->", "<!-- benchmark-table:end -->"


def benchmark_table(report: dict, title: str = "") -> str:
    """Markdown table of a metrics report (see module docstring), conventions as a footnote."""
    lines = [title, ""] if title else []
    lines += ["| k-space | intensity | R | method | PSNR (dB) | SSIM | NMSE |", "|---|---|---|---|---|---|---|"]
    for condition, intensity, block in intensity_blocks(report):
        entries = [("zero-filled", block["zero_filled"]), ("CS (L1-wavelet)", block.get("cs"))]
        if block.get("best"):
            entries.append((f"best: {block['best']['name']}", block["best"]))
        for kind, entry in block.get("best_by_model", {}).items():
            if entry and block.get("best") and entry["run_id"] != block["best"]["run_id"]:
                entries.append((f"best {kind}: {entry['name']}", entry))
        kspace = "magnitude (Hermitian)" if condition == "magnitude" else "synthetic phase"
        for name, entry in entries:
            if entry:
                lines.append(f"| {kspace} | {intensity} | {block['acceleration']:g} | {name} | "
                             f"{entry['psnr']:.2f} | {entry['ssim']:.3f} | {entry['nmse']:.4f} |")
    conv = report.get("conventions", {})
    lines += ["", "Test subjects only; per slice, then mean. PSNR data_range = reference slice max; SSIM 7x7 "
              "uniform window (skimage); best = lowest validation MSE." + (f" Tolerance of % correct: "
              f"{conv['pct_correct_tolerance']}." if "pct_correct_tolerance" in conv else "")]
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
