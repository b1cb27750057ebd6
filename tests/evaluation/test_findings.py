"""mrirecon.evaluation.findings, the sweep figures and the findings tables, on hand-built grid points whose
per-subject scores are known: every subject gains exactly +1 dB from 5 to 10 epochs and loses 0.5 dB from 10
to 20; one more level changes PSNR by a zero-mean amount per subject."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mrirecon.evaluation.figures import best_slice, save_figure, sweep_figure
from mrirecon.evaluation.findings import (
    FINDINGS_COLUMNS,
    SWEEP_COLUMNS,
    axis_effects,
    findings,
    swept_axes,
    write_findings_csv,
    write_sweep_csv,
)
from mrirecon.evaluation.report import PointResult
from mrirecon.evaluation.tables import (
    FINDINGS_END,
    FINDINGS_START,
    findings_best_rows,
    findings_effect_rows,
    findings_markdown,
    update_readme,
)
from mrirecon.grid import GridPoint

SUBJECTS = np.array([f"IXI{i:03d}" for i in range(8)])
BASE = np.linspace(24.0, 27.5, 8)  # per-subject test PSNR (dB) at 2 levels, 5 epochs
EPOCH_GAIN = {5: 0.0, 10: 1.0, 20: 0.5}  # dB, the same for every subject
LEVEL_NOISE = np.array([0.3, -0.3, 0.1, -0.1, 0.2, -0.2, 0.05, -0.05])  # 2 -> 3 levels: mean 0 per subject
RESAMPLES = 500


def _point(
    layers=2, epochs=5, model="image", intensity="medium", offset=0.0, val_mse=0.01, phase=False, subjects=SUBJECTS
):
    psnr = BASE + EPOCH_GAIN[epochs] + (LEVEL_NOISE if layers == 3 else 0.0) + offset
    ssim = 0.6 + 0.01 * EPOCH_GAIN[epochs] + np.zeros(len(BASE))
    grid_point = GridPoint(model, layers, 8, epochs, intensity, phase)
    metrics = {
        "mse": 0.01,
        "nmse": 0.05,
        "psnr": float(psnr.mean()),
        "ssim": float(ssim.mean()),
        "pct_correct": 90.0,
        "psnr_ci_low": float(psnr.mean() - 0.6),
        "psnr_ci_high": float(psnr.mean() + 0.6),
        "ssim_ci_low": float(ssim.mean() - 0.02),
        "ssim_ci_high": float(ssim.mean() + 0.02),
        "volume_psnr": float(psnr.mean() + 4.0),
    }
    return PointResult(
        grid_point.name,
        f"run-{grid_point.name}",
        grid_point.as_params(),
        val_mse,
        4.0,
        metrics,
        diagnostics={"train_psnr": float(psnr.mean() + 0.2 * epochs)},
        scores={"psnr": psnr, "ssim": ssim, "volume_psnr": psnr + 4.0, "subjects": subjects},
    )


def _grid():
    """image x layers {2, 3} x epochs {5, 10, 20}; the best (lowest validation MSE) is 3 levels, 10 epochs."""
    return [
        _point(layers, epochs, val_mse=0.008 if (layers, epochs) == (3, 10) else 0.01 + 0.001 * epochs)
        for layers in (2, 3)
        for epochs in (5, 10, 20)
    ]


def test_neighbouring_epochs_effects_are_the_known_per_subject_changes():
    effects = axis_effects(_grid(), "epochs", seed=0, resamples=RESAMPLES)
    assert list(effects) == ["5_to_10", "10_to_20"]
    up, down = effects["5_to_10"], effects["10_to_20"]
    assert (up["from"], up["to"], up["n_pairs"], up["n_subjects"]) == (5, 10, 2, 8)
    # every subject gains exactly +1 dB: the interval collapses onto it and excludes 0
    assert up["psnr"] == pytest.approx(1.0) and up["psnr_ci_low"] == pytest.approx(1.0)
    assert up["psnr_ci_high"] == pytest.approx(1.0) and up["resolved"] is True
    assert up["ssim"] == pytest.approx(0.01)
    assert down["psnr"] == pytest.approx(-0.5) and down["psnr_ci_high"] == pytest.approx(-0.5)
    assert down["resolved"] is True and down["ssim"] == pytest.approx(-0.005)


def test_a_zero_mean_effect_is_not_resolved():
    effect = axis_effects(_grid(), "layers", seed=0, resamples=RESAMPLES)["2_to_3"]
    assert effect["n_pairs"] == 3  # one pair per epoch count
    assert effect["psnr"] == pytest.approx(LEVEL_NOISE.mean(), abs=1e-12)
    assert effect["psnr_ci_low"] < 0 < effect["psnr_ci_high"] and effect["resolved"] is False
    assert effect["psnr_ci_high"] - effect["psnr_ci_low"] > 0.1


def test_pairs_are_averaged_per_subject_before_the_bootstrap():
    """+1 dB at 2 levels and +3 dB at 3 levels from 5 to 10 epochs: every subject averages +2, so the interval
    collapses onto +2 (resampling the pairs' differences separately would widen it)."""
    points = [_point(2, 5), _point(2, 10), _point(3, 5), _point(3, 10, offset=2.0 - LEVEL_NOISE)]
    points[3].scores["psnr"] = points[2].scores["psnr"] + 3.0
    effect = axis_effects(points, "epochs", seed=0, resamples=RESAMPLES)["5_to_10"]
    assert effect["psnr"] == pytest.approx(2.0)
    assert (effect["psnr_ci_low"], effect["psnr_ci_high"]) == (pytest.approx(2.0), pytest.approx(2.0))


def test_matched_pairs_ignore_points_with_other_axis_values():
    grid = _grid()
    # 4 levels exist only at 10 epochs, far better: no partner at 5 or 20 epochs, so no epochs pair uses it
    lonely = _point(3, 10, offset=10.0)
    lonely.params["layers"], lonely.name = 4, "image-L4-B8-E10-medium"
    unscored = _point(2, 5, offset=50.0)
    unscored.params["batch_size"], unscored.scores = 16, {}
    phase = _point(2, 20, offset=-30.0, phase=True)
    effects = axis_effects([*grid, lonely, unscored], "epochs", seed=0, resamples=RESAMPLES)
    assert effects["5_to_10"]["psnr"] == pytest.approx(1.0) and effects["5_to_10"]["n_pairs"] == 2
    assert axis_effects([*grid, lonely], "layers", 0, RESAMPLES)["3_to_4"]["n_pairs"] == 1
    assert axis_effects([unscored, _point(2, 5)], "batch_size", 0, RESAMPLES) == {}  # no scores, no effect
    block = findings({"medium": 4.0}, [*grid, phase], seed=0, resamples=RESAMPLES)["medium"]
    assert block["effects"]["image"]["epochs"]["10_to_20"]["psnr"] == pytest.approx(-0.5)  # phase point left out
    with pytest.raises(ValueError, match="different test subjects"):
        axis_effects([_point(2, 5), _point(2, 10, subjects=SUBJECTS[::-1])], "epochs", 0, RESAMPLES)


def test_findings_block_best_configuration_and_model_kinds():
    kspace_one_depth = [_point(2, e, model="kspace", val_mse=0.05) for e in (5, 10)]
    kspace_depths = [_point(layers, 5, model="kspace", val_mse=0.05) for layers in (2, 3)]
    block = findings({"low": 2.0, "medium": 4.0}, [*_grid(), *kspace_one_depth], seed=0, resamples=RESAMPLES)
    assert list(block) == ["medium"]  # no points at low
    medium = block["medium"]
    assert medium["acceleration"] == 4.0
    best = medium["best"]["image"]
    assert (best["layers"], best["batch_size"], best["epochs"], best["val_mse"]) == (3, 8, 10, 0.008)
    assert best["psnr"] == pytest.approx((BASE + 1 + LEVEL_NOISE).mean()) and best["psnr_ci_low"] < best["psnr"]
    assert best["volume_psnr"] == pytest.approx(best["psnr"] + 4)
    assert set(medium["effects"]) == {"image", "kspace"}
    assert set(medium["effects"]["kspace"]) == {"epochs"}  # one kspace depth: no layers effect
    other = findings({"medium": 4.0}, [*_grid(), *kspace_depths], seed=0, resamples=RESAMPLES)["medium"]
    assert set(other["effects"]["kspace"]) == {"layers"}

    def leaves(value):
        return [x for v in value.values() for x in leaves(v)] if isinstance(value, dict) else [value]

    assert all(isinstance(x, int | float) for x in leaves(block))  # numbers only (DVC metrics)
    json.dumps(block)


def test_findings_csv_has_one_row_per_neighbouring_pair(tmp_path):
    block = findings({"medium": 4.0}, _grid(), seed=0, resamples=RESAMPLES)
    write_findings_csv(tmp_path / "findings.csv", block)
    with open(tmp_path / "findings.csv") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == FINDINGS_COLUMNS
    assert [(r["axis"], r["from"], r["to"]) for r in rows] == [
        ("layers", "2", "3"),
        ("epochs", "5", "10"),
        ("epochs", "10", "20"),
    ]
    up = rows[1]
    assert (up["intensity"], up["model"], up["n_pairs"], up["n_subjects"], up["resolved"]) == (
        "medium",
        "image",
        "2",
        "8",
        "True",
    )
    assert float(up["delta_psnr"]) == pytest.approx(1.0) and float(up["psnr_ci_low"]) == pytest.approx(1.0)
    assert float(up["delta_ssim"]) == pytest.approx(0.01) and float(rows[2]["psnr_ci_high"]) < 0


def test_sweep_plot_data_and_figures(tmp_path):
    grid = _grid()
    write_sweep_csv(tmp_path / "sweep.csv", grid)
    with open(tmp_path / "sweep.csv") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == SWEEP_COLUMNS and len(rows) == 6
    assert {"layers", "epochs", "psnr", "psnr_ci_low", "psnr_ci_high", "volume_psnr"} <= set(SWEEP_COLUMNS)
    assert float(rows[1]["psnr"]) == pytest.approx((BASE + 1).mean()) and rows[1]["epochs"] == "10"
    assert swept_axes(grid) == ["layers", "epochs"]
    # the epochs line goes through the best configuration (3 levels), layers fixed
    assert [p.name for p in best_slice(grid, "epochs")] == [f"image-L3-B8-E{e}-medium" for e in (5, 10, 20)]
    assert [p.params["layers"] for p in best_slice(grid, "layers")] == [2, 3]
    high = [_point(layers, epochs, intensity="high", offset=-3.0) for layers in (2, 3) for epochs in (5, 10, 20)]
    legends = {
        "epochs": [
            "medium (model=image, layers=3, batch_size=8)",
            "medium train",
            "high (model=image, layers=2, batch_size=8)",
        ],
        "layers": ["medium (model=image, batch_size=8, epochs=10)", "high (model=image, batch_size=8, epochs=5)"],
    }
    for axis in ("epochs", "layers"):
        fig = sweep_figure([*grid, *high], axis)
        assert "best configuration" in fig.get_suptitle()
        assert fig.axes[0].get_legend_handles_labels()[1][: len(legends[axis])] == legends[axis]
        save_figure(fig, tmp_path / f"sweep_{axis}.png")
        assert (tmp_path / f"sweep_{axis}.png").stat().st_size > 20_000


def test_findings_markdown_rows_and_readme_block(tmp_path):
    report = {"findings": findings({"medium": 4.0}, _grid(), seed=0, resamples=RESAMPLES)}
    best = findings_best_rows(report)
    assert [(r["intensity"], r["model"], r["layers"], r["epochs"]) for r in best] == [("medium", "image", 3, 10)]
    effects = findings_effect_rows(report)
    assert [r["change"] for r in effects] == ["2 → 3", "5 → 10", "10 → 20"]
    assert [r["resolved"] for r in effects] == ["no", "yes", "yes"]
    text = findings_markdown(report)
    assert "| medium | image | epochs | 5 → 10 | 2 | +1.00 | [1.00, 1.00] | +0.010 | [+0.010, +0.010] | yes |" in text
    assert "| medium | image | epochs | 10 → 20 | 2 | -0.50 | [-0.50, -0.50] |" in text
    assert "| medium | 4 | image | 3 | 8 | 10 |" in text and "Efron & Tibshirani 1993" in text
    assert findings_markdown({"conventions": {}}) == ""
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{FINDINGS_START}\nold\n{FINDINGS_END}\nrest\n")
    assert update_readme(readme, text, (FINDINGS_START, FINDINGS_END)) is True
    assert "old" not in readme.read_text() and "5 → 10" in readme.read_text()
    # a report read back from metrics.json (floats, NaN intervals as strings) renders the same way
    assert findings_markdown(json.loads(json.dumps(report))) == text
