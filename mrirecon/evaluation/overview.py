"""The short views of a report: the headline numbers per intensity (``reports/summary/<intensity>.json``, what
``dvc metrics show`` and ``dvc exp show`` display), the metric conventions (``reports/conventions.json``, prose kept
out of the metric files), and a self-contained offline page (``reports/index.html``: the headline table and the
figures of ``reports/figures/``, no script, no network).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from mrirecon.data.storage import atomic_path, write_json
from mrirecon.evaluation.report import NOT_INTENSITIES

#: Keys of a headline file (``dvc metrics show`` prints one column per key, in name order, 113 characters wide with
#: ``reports/summary/medium.json``; the acceleration R is left out to stay under 120: it is a parameter).
SUMMARY_KEYS = ("zero_filled_psnr", "cs_psnr", "best_psnr", "psnr_ci_low", "psnr_ci_high", "best_ssim")


def _rounded(value, digits: int) -> float | None:
    try:
        return round(float(value), digits)
    except (TypeError, ValueError):
        return None


def summary(report: dict) -> dict[str, dict[str, float]]:
    """Headline numbers per intensity (magnitude k-space) of a ``metrics.json`` document.

    Returns:
        ``{intensity: {key: value}}`` with the keys of :data:`SUMMARY_KEYS` the report has: test PSNR (dB,
        2 decimals) of zero-filled, CS and the best grid point (lowest validation MSE) with its 95% bootstrap
        interval over test subjects, and the best point's SSIM (3 decimals). A PSNR that is not finite (``"inf"``
        of identical images) is left out.
    """
    out: dict[str, dict[str, float]] = {}
    for intensity, block in report.items():
        if intensity in NOT_INTENSITIES:
            continue
        best = block.get("best") or {}
        values = {
            "zero_filled_psnr": _rounded(block["zero_filled"]["psnr"], 2),
            "cs_psnr": _rounded((block.get("cs") or {}).get("psnr"), 2),
            "best_psnr": _rounded(best.get("psnr"), 2),
            "psnr_ci_low": _rounded(best.get("psnr_ci_low"), 2),
            "psnr_ci_high": _rounded(best.get("psnr_ci_high"), 2),
            "best_ssim": _rounded(best.get("ssim"), 3),
        }
        out[intensity] = {k: v for k, v in values.items() if v is not None and v not in (float("inf"), float("-inf"))}
    return out


def write_summary(folder: Path, report: dict) -> dict[str, dict[str, float]]:
    """Write :func:`summary` as ``folder/<intensity>.json`` (one file per intensity, so ``dvc metrics show`` prints
    one row per intensity) and remove the files of intensities no longer reported; return the summary."""
    numbers = summary(report)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        if stale.stem not in numbers:
            stale.unlink()
    for intensity, values in numbers.items():
        write_json(folder / f"{intensity}.json", values)
    return numbers


def read_report(metrics: Path) -> dict:
    """A ``metrics.json`` document with its conventions: those of ``conventions.json`` in the same folder, or the
    ``conventions`` block of an older ``metrics.json`` that still holds it.

    Raises:
        FileNotFoundError: if ``metrics`` does not exist; ValueError: if it is not JSON (naming the file).
    """
    try:
        report = json.loads(metrics.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{metrics}: not a JSON document ({exc})") from exc
    conventions = metrics.parent / "conventions.json"
    if conventions.exists():
        report["conventions"] = json.loads(conventions.read_text())
    return report


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '-')))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mrirecon: results</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}th{{background:#eee}}
td:first-child,th:first-child{{text-align:left}}img{{max-width:100%;border:1px solid #ddd;margin:.5em 0}}
figure{{margin:1.5em 0}}figcaption{{font-weight:bold}}</style></head>
<body><h1>mrirecon: test-subject results</h1>
<p>Headline numbers per intensity (<code>reports/summary/</code>); full numbers in <code>metrics.json</code>,
<code>grid.csv</code> and <code>findings.csv</code>; conventions in <code>conventions.json</code>.
{footnote}</p>
{table}
{figures}
</body></html>
"""


def write_index_html(out: Path, numbers: dict[str, dict[str, float]], footnote: str = "") -> Path:
    """Write ``out/index.html``: the headline table (:func:`summary`) and every PNG of ``out/figures/`` (relative
    links, name order), viewable offline (no script, no network). Returns its path."""
    columns = ["intensity", *SUMMARY_KEYS]
    rows = [{"intensity": name, **values} for name, values in numbers.items()]
    figures = "\n".join(
        f"<figure><figcaption>{html.escape(png.stem.replace('_', ' '))}</figcaption>"
        f'<img src="figures/{html.escape(png.name)}" alt="{html.escape(png.stem)}"></figure>'
        for png in sorted((out / "figures").glob("*.png"))
    )
    page = PAGE.format(footnote=html.escape(footnote), table=_table(rows, columns), figures=figures)
    path = out / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path
