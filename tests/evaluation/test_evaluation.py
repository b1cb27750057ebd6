import csv
import json

import numpy as np
import pytest

from mrirecon.evaluation.report import (
    PointResult,
    figure_indices,
    headline_metrics,
    metrics_report,
    write_grid_csv,
    write_metrics_json,
)
from mrirecon.evaluation.tables import (
    SUMMARY_COLUMNS,
    benchmark_rows,
    benchmark_table,
    format_row,
    grid_rows,
    markdown_table,
    summary_markdown,
)

ZF = {"medium": {"mse": 0.01, "nmse": 0.05, "psnr": 24.0, "ssim": 0.6, "pct_correct": 70.0}}


def point(name, model, val_mse, psnr):
    params = {"model": model, "layers": 3, "batch_size": 16, "epochs": 8, "intensity": "medium"}
    metrics = {"mse": 0.005, "nmse": 0.02, "psnr": psnr, "ssim": 0.8, "pct_correct": 80.0}
    return PointResult(name, f"run-{name}", params, val_mse, 4.0, metrics, 12.0)


def test_best_is_chosen_on_validation_not_test(tmp_path):
    # b has the better *test* PSNR but the worse validation MSE: a is best
    points = [point("a", "image", 0.004, 27.0), point("b", "image", 0.006, 29.0), point("c", "kspace", 0.009, 25.0)]
    report = metrics_report({"medium": 4.0}, ZF, points)
    assert set(report) == {"medium"}  # numbers only: the conventions are conventions.json
    block = report["medium"]
    assert set(block) == {"acceleration", "zero_filled", "best", "best_by_model"}
    assert block["acceleration"] == 4.0
    assert block["best"]["run_id"] == "run-a" and block["best"]["psnr"] == 27.0
    assert block["best"]["params"] == {
        "model": "image",
        "layers": 3,
        "batch_size": 16,
        "epochs": 8,
        "intensity": "medium",
    }
    assert block["best_by_model"]["kspace"]["run_id"] == "run-c"
    assert set(block["zero_filled"]) == {"mse", "nmse", "psnr", "ssim", "pct_correct"}
    write_metrics_json(tmp_path / "metrics.json", report)
    assert json.loads((tmp_path / "metrics.json").read_text())["medium"]["best"]["model"] == "image"


def test_grid_csv_has_one_row_per_point_with_gain(tmp_path):
    points = [point("a", "image", 0.004, 27.5), point("c", "kspace", 0.009, 25.0)]
    write_grid_csv(tmp_path / "grid.csv", points, ZF)
    rows = list(csv.DictReader(open(tmp_path / "grid.csv")))
    assert [r["name"] for r in rows] == ["a", "c"]
    assert float(rows[0]["psnr_gain_db"]) == pytest.approx(3.5)
    assert rows[1]["model"] == "kspace" and rows[1]["run_id"] == "run-c"


def test_figure_indices_fixed_and_spread():
    assert figure_indices(115, 3) == [0, 57, 114]
    assert figure_indices(2, 5) == [0, 1]
    assert np.all(np.diff(figure_indices(50, 4)) > 0)


def _entry(name, run_id, psnr, ssim, nmse):
    return {"run_id": run_id, "name": name, "psnr": psnr, "ssim": ssim, "nmse": nmse}


#: The subject-bootstrap interval and volume-convention PSNR of the best entry.
BEST_EXTRA = {"psnr_ci_low": 26.9, "psnr_ci_high": 27.61, "volume_psnr": 31.5}

#: A hand-made metrics.json: one intensity with CS and two model kinds, and its synthetic-phase block
#: without CS; the phase block's PSNR is the string "inf" as write_metrics_json writes a perfect score.
REPORT = {
    "conventions": {"pct_correct_tolerance": 0.05},
    "medium": {
        "acceleration": 4.0,
        "zero_filled": _entry(None, None, 22.0, 0.5, 0.06),
        "cs": {**_entry(None, None, 24.5, 0.7, 0.035), "lambda": 0.003},
        "best": {**_entry("image-a", "run-a", 27.25, 0.81, 0.012), **BEST_EXTRA},
        "best_by_model": {
            "image": _entry("image-a", "run-a", 27.25, 0.81, 0.012),
            "kspace": _entry("kspace-c", "run-c", 25.0, 0.75, 0.02),
        },
    },
    "synthetic_phase": {
        "medium": {
            "acceleration": 4.0,
            "zero_filled": _entry(None, None, 21.9, 0.49, 0.061),
            "best": _entry("image-a-phase", "run-p", "inf", 1.0, 0.0),
            "best_by_model": {},
        }
    },
}


def test_benchmark_rows_of_a_hand_made_report():
    rows = benchmark_rows(REPORT)
    assert [(r["k-space"], r["method"]) for r in rows] == [
        ("magnitude (Hermitian)", "zero-filled"),
        ("magnitude (Hermitian)", "CS (L1-wavelet)"),
        ("magnitude (Hermitian)", "best: image-a"),
        ("magnitude (Hermitian)", "best kspace: kspace-c"),
        ("synthetic phase", "zero-filled"),
        ("synthetic phase", "best: image-a-phase"),
    ]
    assert rows[2] == {
        "k-space": "magnitude (Hermitian)",
        "intensity": "medium",
        "R": 4.0,
        "method": "best: image-a",
        "PSNR (dB)": 27.25,
        "95% CI": (26.9, 27.61),
        "volume PSNR (dB)": 31.5,
        "SSIM": 0.81,
        "NMSE": 0.012,
        "gain (dB)": pytest.approx(5.25),
    }
    assert rows[0]["gain (dB)"] is None and rows[3]["gain (dB)"] == pytest.approx(3.0)
    assert rows[5]["PSNR (dB)"] == np.inf and rows[5]["gain (dB)"] == np.inf


def test_one_renderer_for_readme_summary_and_cli():
    rows = benchmark_rows(REPORT)
    assert format_row(rows[2]) == [
        "magnitude (Hermitian)",
        "medium",
        "4",
        "best: image-a",
        "27.25",
        "[26.90, 27.61]",
        "0.810",
        "0.0120",
        "31.50",
    ]
    assert format_row(rows[0])[5] == "-"  # no interval scored
    assert format_row(rows[0], SUMMARY_COLUMNS)[-1] == "-" and format_row(rows[1], SUMMARY_COLUMNS)[-1] == "+2.50"
    assert format_row(rows[5], SUMMARY_COLUMNS)[4:] == ["inf", "-", "1.000", "0.0000", "-", "+inf"]
    table = markdown_table(rows, SUMMARY_COLUMNS).splitlines()
    assert table[:2] == [
        "| k-space | intensity | R | method | PSNR (dB) | 95% CI | SSIM | NMSE | volume PSNR (dB) | gain (dB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    assert table[4] == (
        "| magnitude (Hermitian) | medium | 4 | best: image-a | 27.25 | [26.90, 27.61] | 0.810 | 0.0120 | 31.50 "
        "| +5.25 |"
    )
    assert len(table) == 2 + len(rows)
    readme = benchmark_table(REPORT, "Title").splitlines()
    assert readme[:2] == ["Title", ""]
    assert readme[2] == "| k-space | intensity | R | method | PSNR (dB) | 95% CI | SSIM | NMSE | volume PSNR (dB) |"
    assert readme[5] == "| magnitude (Hermitian) | medium | 4 | CS (L1-wavelet) | 24.50 | - | 0.700 | 0.0350 | - |"
    assert readme[-2] == "" and readme[-1].endswith("data range). Tolerance of % correct: 0.05.")


def test_grid_rows_and_summary_of_the_prefect_artifacts(tmp_path):
    params = {"model": "image", "layers": 3, "batch_size": 16, "epochs": 8, "intensity": "medium"}
    plain = PointResult(
        "image-a",
        "run-a",
        params,
        0.0041234567,
        4.0,
        {"mse": 0.005, "nmse": 0.012, "psnr": 27.25, "ssim": 0.81, "pct_correct": 80.0},
        9.0,
        {"psnr_gap_db": 2.5, "mse_ratio": 1.8, "noisy_psnr": 26.0, "overfit": True},
    )
    phase = PointResult(
        "image-a-phase",
        "run-p",
        {**params, "synthetic_phase": True},
        0.005,
        4.0,
        {"mse": 0.006, "nmse": 0.02, "psnr": 25.0, "ssim": 0.78, "pct_correct": 75.0},
    )
    rows = grid_rows(REPORT, [plain, phase])
    assert rows[0] == {
        "grid point": "image-a",
        **params,
        "val MSE": 0.004123,
        "test PSNR (dB)": 27.25,
        "gain over zero-filled (dB)": 5.25,
        "test SSIM": 0.81,
        "test NMSE": 0.012,
        "train-test PSNR gap (dB)": 2.5,
        "noisy test PSNR (dB)": 26.0,
        "MLflow run": "run-a",
    }
    assert rows[1]["gain over zero-filled (dB)"] == 3.1  # against the synthetic-phase zero-filled PSNR 21.9
    assert rows[1]["train-test PSNR gap (dB)"] is None
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "reconstructions_medium.png").write_bytes(b"png")
    text = summary_markdown(REPORT, [plain, phase], tmp_path)
    assert "| medium | 4 | best: image-a | 27.25 | [26.90, 27.61] | 0.810 | 0.0120 | 31.50 | +5.25 |" in text
    assert "- **image-a** overfits: gap 2.50 dB (test/train MSE ratio 1.80)" in text
    assert f"- `{tmp_path / 'figures' / 'reconstructions_medium.png'}`" in text


def test_headline_metrics_of_the_parent_run():
    report = {**REPORT, "synthetic_phase": {"medium": {**REPORT["synthetic_phase"]["medium"], "best": None}}}
    assert headline_metrics(report) == {
        "medium_zero_filled_psnr": 22.0,
        "medium_cs_psnr": 24.5,
        "medium_best_psnr": 27.25,
        "medium_best_ssim": 0.81,
        "medium_best_volume_psnr": 31.5,
        "phase_medium_zero_filled_psnr": 21.9,
    }
    with_difference = {**REPORT, "medium": {**REPORT["medium"], "differences": {"best_minus_cs": {"psnr": 2.75}}}}
    assert headline_metrics(with_difference)["medium_best_minus_cs_psnr"] == 2.75
