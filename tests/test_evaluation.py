import csv
import json

import numpy as np
import pytest

from mrirecon.evaluation import PointResult, figure_indices, metrics_report, write_grid_csv, write_metrics_json

ZF = {"medium": {"mse": 0.01, "nmse": 0.05, "psnr": 24.0, "ssim": 0.6, "pct_correct": 70.0}}


def point(name, model, val_mse, psnr):
    params = {"model": model, "layers": 3, "batch_size": 16, "epochs": 8, "intensity": "medium"}
    metrics = {"mse": 0.005, "nmse": 0.02, "psnr": psnr, "ssim": 0.8, "pct_correct": 80.0}
    return PointResult(name, f"run-{name}", params, val_mse, 4.0, metrics, 12.0)


def test_best_is_chosen_on_validation_not_test(tmp_path):
    # b has the better *test* PSNR but the worse validation MSE: a is best
    points = [point("a", "image", 0.004, 27.0), point("b", "image", 0.006, 29.0), point("c", "kspace", 0.009, 25.0)]
    report = metrics_report({"medium": 4.0}, ZF, points, 0.05)
    assert set(report) == {"conventions", "medium"}
    block = report["medium"]
    assert set(block) == {"acceleration", "zero_filled", "best", "best_by_model"}
    assert block["acceleration"] == 4.0
    assert block["best"]["run_id"] == "run-a" and block["best"]["psnr"] == 27.0
    assert block["best"]["params"] == {"model": "image", "layers": 3, "batch_size": 16, "epochs": 8, "intensity": "medium"}
    assert block["best_by_model"]["kspace"]["run_id"] == "run-c"
    assert set(block["zero_filled"]) == {"mse", "nmse", "psnr", "ssim", "pct_correct"}
    assert report["conventions"]["pct_correct_tolerance"] == 0.05
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
