"""The short views of a report: headline numbers per intensity, conventions apart, the offline page."""

from __future__ import annotations

import json

from mrirecon.evaluation.overview import read_report, summary, write_index_html, write_summary

REPORT = {
    "medium": {
        "acceleration": 4.0,
        "zero_filled": {"psnr": 21.9612, "ssim": 0.48},
        "cs": {"psnr": 24.3749, "ssim": 0.72, "lambda": 0.003},
        "best": {"name": "a", "psnr": 27.6949, "psnr_ci_low": 27.3012, "psnr_ci_high": 28.0851, "ssim": 0.90649},
        "best_by_model": {},
    },
    "high": {"acceleration": 8.0, "zero_filled": {"psnr": "inf", "ssim": 1.0}, "best": None, "best_by_model": {}},
    "synthetic_phase": {"medium": {"acceleration": 4.0, "zero_filled": {"psnr": 1.0}}},
    "findings": {"medium": {}},
}


def test_summary_keeps_rounded_numbers_per_intensity_only():
    assert summary(REPORT) == {
        "medium": {
            "zero_filled_psnr": 21.96,
            "cs_psnr": 24.37,
            "best_psnr": 27.69,
            "psnr_ci_low": 27.3,
            "psnr_ci_high": 28.09,
            "best_ssim": 0.906,
        },
        "high": {},  # an infinite PSNR (identical images) and no trained point: nothing to show
    }


def test_write_summary_removes_intensities_no_longer_reported(tmp_path):
    (tmp_path / "low.json").write_text("{}")
    write_summary(tmp_path, REPORT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["high.json", "medium.json"]
    assert json.loads((tmp_path / "medium.json").read_text())["best_psnr"] == 27.69


def test_read_report_takes_the_conventions_beside_it(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"medium": {"acceleration": 4.0}}))
    assert read_report(tmp_path / "metrics.json") == {"medium": {"acceleration": 4.0}}
    (tmp_path / "conventions.json").write_text(json.dumps({"pct_correct_tolerance": 0.05}))
    assert read_report(tmp_path / "metrics.json")["conventions"] == {"pct_correct_tolerance": 0.05}


def test_index_html_links_every_figure_and_needs_no_network(tmp_path):
    (tmp_path / "figures").mkdir()
    for name in ("b_plot.png", "a_plot.png"):
        (tmp_path / "figures" / name).write_bytes(b"\x89PNG")
    page = write_index_html(tmp_path, summary(REPORT), "Tolerance <5%>").read_text()
    assert page.index('src="figures/a_plot.png"') < page.index('src="figures/b_plot.png"')
    assert "<td>27.69</td>" in page and "Tolerance &lt;5%&gt;" in page
    assert "<script" not in page and "://" not in page
