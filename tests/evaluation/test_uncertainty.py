"""Bootstrap intervals over test subjects, and the paired differences a report carries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrirecon.evaluation.report import PointResult, metrics_report
from mrirecon.evaluation.uncertainty import (
    mean_ci,
    paired_difference_ci,
    paired_differences,
    subject_means,
    subject_scores,
    with_uncertainty,
)


def test_subject_means_average_within_subjects():
    assert subject_means([1.0, 3.0, 10.0], ["s1", "s1", "s2"]).tolist() == [2.0, 10.0]
    with pytest.raises(ValueError):
        subject_means([1.0], ["a", "b"])


def test_bootstrap_ci_on_a_known_case():
    # 200 subjects from N(5, 1): the 95% CI of the mean is about 5 +- 1.96 / sqrt(200) = +-0.139
    x = np.random.default_rng(1).normal(5.0, 1.0, 200)
    ci = mean_ci(x, seed=0)
    assert ci["mean"] == pytest.approx(x.mean())
    assert ci["ci_low"] < x.mean() < ci["ci_high"]
    assert ci["ci_high"] - ci["ci_low"] == pytest.approx(2 * 1.96 * x.std(ddof=1) / np.sqrt(200), rel=0.15)
    assert mean_ci(x, seed=0) == ci  # seeded: reproducible
    assert mean_ci([3.0]) == {"mean": 3.0, "ci_low": 3.0, "ci_high": 3.0, "n_subjects": 1}
    assert math.isnan(mean_ci([1.0, math.inf])["ci_low"])


def test_paired_difference_resolves_a_consistent_gain_that_unpaired_intervals_hide():
    rng = np.random.default_rng(2)
    base = rng.normal(25.0, 3.0, 23)  # subjects differ a lot
    better = base + 0.3 + rng.normal(0, 0.05, 23)  # but every subject gains about 0.3 dB
    a, b = mean_ci(better), mean_ci(base)
    assert a["ci_low"] < b["ci_high"]  # the unpaired intervals overlap ...
    diff = paired_difference_ci(better, base)
    assert diff["ci_low"] > 0.2 and diff["ci_high"] < 0.4  # ... the paired difference excludes 0
    with pytest.raises(ValueError, match="same subjects"):
        paired_difference_ci([1.0], [1.0, 2.0])


def _scored(offset: float, n_subjects: int = 6) -> tuple[np.ndarray, list[str], dict]:
    """Reference slices of ``n_subjects`` subjects (2 slices each) and estimates off by ``offset`` per pixel."""
    rng = np.random.default_rng(3)
    refs = rng.uniform(0.1, 1.0, (2 * n_subjects, 16, 16))
    subjects = [f"s{i // 2}" for i in range(2 * n_subjects)]
    noise = rng.normal(0, 0.02, refs.shape)
    return refs, subjects, subject_scores(refs, refs + noise + offset, subjects, 0.05)


def test_subject_scores_and_intervals_of_a_method():
    refs, subjects, scores = _scored(0.0)
    assert list(scores["subjects"]) == [f"s{i}" for i in range(6)]
    assert scores["psnr"].shape == scores["volume_psnr"].shape == (6,)
    metrics = with_uncertainty({"psnr": float(scores["psnr"].mean())}, scores, seed=0, resamples=500)
    assert metrics["psnr_ci_low"] < metrics["psnr"] < metrics["psnr_ci_high"]
    assert metrics["volume_psnr"] == pytest.approx(scores["volume_psnr"].mean())
    assert metrics["volume_psnr_ci_low"] < metrics["volume_psnr"] < metrics["volume_psnr_ci_high"]


def test_report_carries_paired_differences_of_the_chosen_point():
    refs, subjects, good = _scored(0.0)
    _, _, worse = _scored(0.05)
    point = PointResult(
        "p",
        "r",
        {"model": "image", "layers": 2, "batch_size": 8, "epochs": 1, "intensity": "m"},
        0.001,
        4.0,
        {"mse": 0, "nmse": 0, "psnr": 30.0, "ssim": 0.9, "pct_correct": 99},
        scores=good,
    )
    zf = {"mse": 0, "nmse": 0, "psnr": 20.0, "ssim": 0.5, "pct_correct": 50}
    report = metrics_report({"m": 4.0}, {"m": zf}, [point], baseline_scores={"m": {"zero_filled": worse}})
    diff = report["m"]["differences"]["best_minus_zero_filled"]
    assert diff["psnr"] == pytest.approx(float(np.mean(good["psnr"] - worse["psnr"])))
    assert diff["psnr"] > 0 and diff["psnr_ci_low"] > 0  # a 0.05 offset costs every subject PSNR
    assert paired_differences(good, worse)["volume_psnr"] > 0
    report_without = metrics_report({"m": 4.0}, {"m": zf}, [point])
    assert "differences" not in report_without["m"]
