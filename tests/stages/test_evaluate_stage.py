"""mrirecon.stages.evaluate: train.json in, metrics.json / grid.csv / plots / figures out."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrirecon.config import EvaluateParams, SliceParams
from mrirecon.data.slice_set import SliceSet
from mrirecon.evaluation.report import PointResult, metrics_report
from mrirecon.evaluation.scoring import Baselines
from mrirecon.stages.evaluate import (
    ALL_TEST_SPLIT,
    external_slice_params,
    read_history,
    read_train_summary,
    scored_intensities,
    write_reports,
)

SUMMARY = {
    "parent_run_id": "parent",
    "points": [
        {"name": "image-L2-B8-E2-medium", "run_id": "run-a", "intensity": "medium", "model_dir": "models/a"},
        {"name": "image-L2-B8-E2-high", "run_id": "run-b", "intensity": "high", "model_dir": "models/b"},
    ],
}


def _metrics(psnr, mse=0.01):
    return {"mse": mse, "nmse": 0.05, "psnr": psnr, "ssim": 0.7, "pct_correct": 70.0}


def test_read_train_summary_filters_by_run_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the train stage first"):
        read_train_summary(tmp_path)
    (tmp_path / "train.json").write_text(json.dumps(SUMMARY))
    assert read_train_summary(tmp_path) == SUMMARY
    assert [p["name"] for p in read_train_summary(tmp_path, "run-b")["points"]] == ["image-L2-B8-E2-high"]
    with pytest.raises(ValueError, match="no grid point with MLflow run id run-x"):
        read_train_summary(tmp_path, "run-x")


def test_read_history(tmp_path):
    assert read_history(tmp_path) is None
    (tmp_path / "history.json").write_text('{"loss": [0.2, 0.1], "val_loss": [0.3, 0.2]}')
    assert read_history(tmp_path) == {"loss": [0.2, 0.1], "val_loss": [0.3, 0.2]}


def test_scored_intensities_keep_params_order_and_only_trained_ones():
    accelerations = {"low": 2.0, "high": 8.0, "medium": 4.0}
    assert scored_intensities(accelerations, SUMMARY) == {"high": 8.0, "medium": 4.0}
    assert list(scored_intensities(accelerations, SUMMARY)) == ["high", "medium"]


def test_external_slices_are_resampled_to_the_training_pixel_size(tmp_path):
    pq.write_table(pa.table({"voxel_mm": [[1.8, 1.8, 2.5], [0.9, 0.9, 1.2]]}), tmp_path / "slices.parquet")
    params = external_slice_params(SliceParams(), tmp_path / "slices.parquet")
    assert params.pixel_mm == 1.8 and params.size == SliceParams().size
    assert ALL_TEST_SPLIT.fractions == {"train": 0.0, "val": 0.0, "test": 1.0}


def _test_set(n=3, size=16):
    rng = np.random.default_rng(0)
    return SliceSet(
        rng.random((n, size, size)).astype(np.float32),
        np.ones((n, size), bool),
        [f"IXI{i:03d}-HH-0000" for i in range(n)],
        np.arange(n) + 40,
        4.0,
    )


def test_write_reports_writes_every_file(tmp_path):
    test = _test_set()
    shown = test.images[[0, 2]]
    images = {"zero_filled": shown * 0.5, "cs": shown * 0.8}
    baselines = {
        "medium": Baselines(
            {
                "magnitude": {
                    "zero_filled": _metrics(22.0),
                    "cs": {**_metrics(24.0), "lambda": 0.003},
                    "images": images,
                },
                "synthetic_phase": {"zero_filled": _metrics(21.5), "cs": None, "images": {"zero_filled": shown * 0.4}},
            },
            {"nominal": 4.0, "achieved": 4.1, "hermitian": 2.6},
        )
    }
    params = {"model": "image", "layers": 2, "batch_size": 8, "epochs": 2, "intensity": "medium"}
    results = [
        PointResult(
            "a",
            "run-a",
            params,
            0.003,
            4.0,
            _metrics(27.0),
            5.0,
            {
                "train_mse": 0.009,
                "train_psnr": 27.5,
                "psnr_gap_db": 0.5,
                "mse_ratio": 1.1,
                "noisy_psnr": 26.0,
                "noise_drop_db": 1.0,
                "overfit": False,
            },
        ),
        PointResult("a-phase", "run-p", {**params, "synthetic_phase": True}, 0.004, 4.0, _metrics(25.0), 6.0),
    ]
    figures = {"a": shown, "a-phase": shown}
    histories = {"a": {"loss": [0.2, 0.1], "val_loss": [0.3, 0.2]}}
    evaluate = EvaluateParams(tolerance=0.05, figure_slices=2)
    report = write_reports(
        tmp_path, {"medium": 4.0}, baselines, results, figures, {"medium": test}, histories, evaluate
    )

    assert {k: v for k, v in report.items() if k != "findings"} == metrics_report(
        {"medium": 4.0},
        {"medium": _metrics(22.0)},
        results,
        {"medium": {**_metrics(24.0), "lambda": 0.003}},
        {"medium": baselines["medium"].conditions["synthetic_phase"]},
        {"medium": baselines["medium"].effective},
    )
    assert json.loads((tmp_path / "metrics.json").read_text()) == report
    assert report["medium"]["best"]["name"] == "a" and report["synthetic_phase"]["medium"]["best"]["name"] == "a-phase"
    rows = list(csv.DictReader(open(tmp_path / "grid.csv")))
    # gain over the zero-filled baseline of the point's own k-space simulation
    assert [(r["name"], float(r["psnr_gain_db"])) for r in rows] == [("a", 5.0), ("a-phase", 3.5)]
    assert rows[0]["psnr_gap_db"] == "0.5" and rows[1]["psnr_gap_db"] == ""
    curves = list(csv.reader(open(tmp_path / "plots" / "training_curves.csv")))
    assert curves == [["grid_point", "epoch", "loss", "val_loss"], ["a", "1", "0.2", "0.3"], ["a", "2", "0.1", "0.2"]]
    plot = list(csv.DictReader(open(tmp_path / "plots" / "metrics_vs_acceleration.csv")))
    assert float(plot[0]["best_psnr"]) == 27.0 and float(plot[0]["phase_zero_filled_psnr"]) == 21.5
    # one grid value per axis: the best configuration, no effects, no sweep figures
    assert (
        report["findings"]["medium"]["best"]["image"]["epochs"] == 2 and report["findings"]["medium"]["effects"] == {}
    )
    assert list(csv.reader(open(tmp_path / "findings.csv")))[1:] == []
    assert [r["name"] for r in csv.DictReader(open(tmp_path / "plots" / "sweep.csv"))] == ["a", "a-phase"]
    assert not list((tmp_path / "figures").glob("sweep_*.png"))
    figures_dir = tmp_path / "figures"
    assert sorted(p.name for p in figures_dir.iterdir()) == [
        "metrics_vs_acceleration.png",
        "reconstructions_medium.png",
        "reconstructions_medium_synthetic_phase.png",
        "training_curves.png",
    ]
    assert all(p.stat().st_size > 5_000 for p in figures_dir.iterdir())
    # the short views: numbers-only headline per intensity (the DVC metrics), conventions apart, offline page
    assert "conventions" not in json.loads((tmp_path / "metrics.json").read_text())
    conventions = json.loads((tmp_path / "conventions.json").read_text())
    assert conventions["pct_correct_tolerance"] == 0.05 and "7x7" in conventions["ssim"]
    assert [p.name for p in (tmp_path / "summary").iterdir()] == ["medium.json"]
    headline = json.loads((tmp_path / "summary" / "medium.json").read_text())
    assert headline == {"zero_filled_psnr": 22.0, "cs_psnr": 24.0, "best_psnr": 27.0, "best_ssim": 0.7}
    page = (tmp_path / "index.html").read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert [f'src="figures/{p.name}"' in page for p in sorted(figures_dir.iterdir())] == [True] * 4
    assert "<td>27.0</td>" in page and "<td>24.0</td>" in page


def test_write_reports_writes_findings_and_sweep_figures_for_a_swept_axis(tmp_path):
    test = _test_set()
    shown = test.images[[0, 2]]
    baselines = {
        "medium": Baselines(
            {"magnitude": {"zero_filled": _metrics(22.0), "cs": None, "images": {"zero_filled": shown * 0.5}}},
            {"nominal": 4.0, "achieved": 4.1, "hermitian": 2.6},
        )
    }
    subjects = np.array(test.subjects)
    results = []
    for epochs, gain in ((2, 0.0), (4, 1.5)):
        psnr = np.array([26.0, 27.0, 28.0]) + gain
        params = {"model": "image", "layers": 2, "batch_size": 8, "epochs": epochs, "intensity": "medium"}
        scores = {"psnr": psnr, "ssim": np.full(3, 0.7), "volume_psnr": psnr + 4, "subjects": subjects}
        results.append(PointResult(f"e{epochs}", f"run-{epochs}", params, 0.01 / epochs, 4.0, _metrics(psnr.mean())))
        results[-1].scores = scores
    evaluate = EvaluateParams(tolerance=0.05, figure_slices=2, ci_resamples=200)
    figures = {r.name: shown for r in results}
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "sweep_layers.png").write_bytes(b"stale")
    report = write_reports(tmp_path, {"medium": 4.0}, baselines, results, figures, {"medium": test}, {}, evaluate)

    effect = report["findings"]["medium"]["effects"]["image"]["epochs"]["2_to_4"]
    assert effect["psnr"] == pytest.approx(1.5) and effect["resolved"] is True
    assert report["findings"]["medium"]["best"]["image"]["epochs"] == 4
    assert json.loads((tmp_path / "metrics.json").read_text())["findings"]["medium"]["effects"]["image"]["epochs"]
    rows = list(csv.DictReader(open(tmp_path / "findings.csv")))
    assert [(r["axis"], r["from"], r["to"]) for r in rows] == [("epochs", "2", "4")]
    assert (tmp_path / "figures" / "sweep_epochs.png").stat().st_size > 10_000
    assert not (tmp_path / "figures" / "sweep_layers.png").exists()  # stale: the grid no longer sweeps layers


def test_write_reports_adds_the_lesion_blocks_columns_and_figures(tmp_path):
    from helpers import head_set

    from mrirecon.config import LesionParams
    from mrirecon.evaluation.lesions import score_lesions
    from mrirecon.evaluation.scoring import score_baselines

    test = replace(head_set(2), acceleration=4.0, intensity="medium")
    lesions = LesionParams(slices=None, diameters_px=[1.0, 3.0, 5.0], contrasts=[-0.4, 0.4], margin_px=2.0)
    evaluate = EvaluateParams(cs=False, synthetic_phase_baselines=False, figure_slices=2, lesions=lesions)
    baselines = {"medium": score_baselines(test, None, evaluate, phase_seed=0)}
    check = baselines["medium"].lesions
    reference = test.images[check.indices]
    results = []
    for epochs, kept in ((2, 1.0), (4, 0.5)):  # longer training erases half of every lesion
        params = {"model": "image", "layers": 2, "batch_size": 8, "epochs": epochs, "intensity": "medium"}
        point = PointResult(f"e{epochs}", f"run-{epochs}", params, 0.01 * epochs, 4.0, _metrics(27.0))
        with_lesions = reference + kept * check.lesions.delta
        point.lesions = score_lesions(check.lesions, reference, with_lesions, reference, lesions)
        point.lesion_shown = (with_lesions[check.shown_slice], reference[check.shown_slice])
        results.append(point)
    figures = {r.name: reference for r in results}
    report = write_reports(tmp_path, {"medium": 4.0}, baselines, results, figures, {"medium": test}, {}, evaluate)

    block = json.loads((tmp_path / "metrics.json").read_text())["medium"]["lesions"]
    assert block["zero_filled"]["contrast_recovery"] == pytest.approx(1.0, abs=1e-5)  # fully sampled masks
    assert block["cs"] is None and block == report["medium"]["lesions"]
    assert block["best"]["contrast_recovery"] == pytest.approx(1.0)  # e2: lowest validation MSE
    rows = {r["name"]: r for r in csv.DictReader(open(tmp_path / "grid.csv"))}
    assert float(rows["e4"]["lesion_contrast_recovery"]) == pytest.approx(0.5)
    assert float(rows["e4"]["lesion_cr_5px"]) == pytest.approx(0.5)
    sweep = {r["name"]: r for r in csv.DictReader(open(tmp_path / "plots" / "sweep.csv"))}
    assert float(sweep["e2"]["lesion_contrast_recovery"]) == pytest.approx(1.0)
    assert (tmp_path / "figures" / "lesions_medium.png").stat().st_size > 10_000
    assert (tmp_path / "figures" / "sweep_lesions.png").stat().st_size > 10_000
