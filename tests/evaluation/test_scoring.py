"""mrirecon.evaluation.scoring on tiny synthetic slice sets: baselines, one grid point, diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrirecon.config import EvaluateParams
from mrirecon.data.slice_set import SliceSet
from mrirecon.evaluation.report import DIAGNOSTICS
from mrirecon.evaluation.scoring import (
    Baselines,
    Reconstructions,
    evaluate_point,
    evenly_spaced,
    gap_slices,
    score_baselines,
    score_point,
)
from mrirecon.evaluation.uncertainty import CI_METRICS, UNCERTAINTY_KEYS
from mrirecon.mri.cs import cs_reconstruct_batch
from mrirecon.mri.fft import apply_mask, fft2c
from mrirecon.mri.metrics import METRIC_NAMES, mean_metrics

SIZE = 16
PARAMS = {"model": "image", "layers": 1, "batch_size": 2, "epochs": 1, "intensity": "medium", "synthetic_phase": False}
ENTRY = {"name": "image-L1-B2-E1-medium", "run_id": "run-1", "val_mse": 0.002, "wall_time_s": 3.5}


def slice_set(n: int = 4, columns=None, seed: int = 0) -> SliceSet:
    """``n`` random 16 x 16 slices (a bright square on a dim background), each with the same mask."""
    rng = np.random.default_rng(seed)
    images = 0.1 * rng.random((n, SIZE, SIZE))
    images[:, 4:12, 5:11] += 0.8 + 0.1 * rng.random((n, 8, 6))
    masks = np.zeros((n, SIZE), bool)
    masks[:, np.arange(SIZE) % 2 == 0 if columns is None else columns] = True
    return SliceSet(images.astype(np.float32), masks, [f"IXI{i:03d}-HH-0000" for i in range(n)], np.arange(n) + 40, 2.0)


def no_cs(**update) -> EvaluateParams:
    return EvaluateParams(**{"cs": False, "synthetic_phase_baselines": False, "figure_slices": 2, **update})


def test_zero_filled_baseline_of_every_other_line_is_the_half_fov_alias():
    # keeping the even k-space columns folds the image onto itself shifted by half the field of view
    test = slice_set()
    baselines = score_baselines(test, None, no_cs(), phase_seed=0)
    alias = np.abs(test.images + np.roll(test.images, SIZE // 2, axis=-1)) / 2
    block = baselines.conditions["magnitude"]
    assert set(baselines.conditions) == {"magnitude"} and block["cs"] is None
    assert _per_slice(block["zero_filled"]) == pytest.approx(mean_metrics(test.images, alias, 0.05), rel=1e-5)
    _assert_intervals_hold_their_means(block["zero_filled"])
    assert block["zero_filled"]["psnr"] < 20  # the alias is a poor image
    np.testing.assert_allclose(block["images"]["zero_filled"], alias[[0, 3]], atol=1e-6)  # figure slices 0 and 3
    assert baselines.effective == {"nominal": 2.0, "achieved": 2.0, "hermitian": 2.0}
    assert baselines.cs_lambda is None and baselines.cs_scores == {} and baselines.cs_val_slices == 0


def test_a_fully_sampled_slice_is_recovered_with_and_without_synthetic_phase():
    test = slice_set(columns=slice(None))
    baselines = score_baselines(test, None, no_cs(synthetic_phase_baselines=True), phase_seed=3)
    assert set(baselines.conditions) == {"magnitude", "synthetic_phase"}
    for block in baselines.conditions.values():
        assert block["zero_filled"]["pct_correct"] == 100.0
        assert block["zero_filled"]["psnr"] > 100 and block["zero_filled"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert baselines.effective["achieved"] == 1.0
    # a grid point trained with synthetic phase is compared with the synthetic-phase block
    assert baselines.condition(True) is baselines.conditions["synthetic_phase"]
    assert baselines.condition(False) is baselines.conditions["magnitude"]


def test_synthetic_phase_block_falls_back_to_magnitude_when_not_scored():
    baselines = Baselines({"magnitude": {"zero_filled": {}}}, {})
    assert baselines.condition(True) is baselines.conditions["magnitude"]


def test_cs_weight_is_chosen_on_validation_slices_and_scored_on_test_slices():
    columns = [0, 3, 6, 7, 8, 9, 12]
    test, val = slice_set(columns=columns), slice_set(n=6, columns=columns, seed=1)
    evaluate = EvaluateParams(
        cs_lambdas=[1e-3, 3e-2],
        cs_iterations=5,
        cs_val_slices=3,
        figure_slices=2,
        synthetic_phase_baselines=False,
        cs_cycle_spin=False,
    )
    baselines = score_baselines(test, val, evaluate, phase_seed=0)
    assert baselines.cs_val_slices == 3 and set(baselines.cs_scores) == {1e-3, 3e-2}
    assert baselines.cs_lambda == max(baselines.cs_scores, key=baselines.cs_scores.get)
    block = baselines.conditions["magnitude"]
    measured = apply_mask(fft2c(test.images.astype(np.complex128)), test.masks[:, None, :])
    cs = np.abs(cs_reconstruct_batch(measured, test.masks, baselines.cs_lambda, 5, wavelet="haar", cycle_spin=False))
    assert {**_per_slice(block["cs"]), "lambda": block["cs"]["lambda"]} == pytest.approx(
        {**mean_metrics(test.images, cs.astype(np.float32), 0.05), "lambda": baselines.cs_lambda}
    )
    assert list(block["scores"]["cs"]["subjects"]) == list(dict.fromkeys(test.subjects))
    assert block["images"]["cs"].shape == (2, SIZE, SIZE)
    assert baselines.effective["achieved"] == pytest.approx(SIZE / 7)


def test_evenly_spaced_keeps_slices_in_order():
    data = slice_set(n=7)
    subset = evenly_spaced(data, 3)
    assert subset.subjects == ["IXI000-HH-0000", "IXI003-HH-0000", "IXI006-HH-0000"]
    np.testing.assert_array_equal(subset.images, data.images[[0, 3, 6]])
    assert len(evenly_spaced(data, 50)) == 7


def test_a_perfect_reconstruction_scores_infinite_psnr():
    test = slice_set()
    recon = Reconstructions(test.images.copy(), test.images.copy())
    result = score_point(ENTRY, PARAMS, test, None, recon, no_cs())
    assert _per_slice(result.metrics) == {"mse": 0.0, "nmse": 0.0, "psnr": math.inf, "ssim": 1.0, "pct_correct": 100.0}
    assert (result.metrics["volume_psnr"], result.metrics["volume_nmse"]) == (math.inf, 0.0)
    assert math.isnan(result.metrics["psnr_ci_low"])  # no interval around an infinite mean
    assert (result.name, result.run_id, result.val_mse, result.acceleration, result.wall_time_s) == (
        "image-L1-B2-E1-medium",
        "run-1",
        0.002,
        2.0,
        3.5,
    )
    assert result.params == PARAMS and result.diagnostics == {}  # no training slices: no diagnostics


def test_point_diagnostics_from_known_errors():
    # errors 0.001 on train, 0.01 on test, 0.02 with noise: gap 20 dB, MSE ratio 100, noise costs 10 log10(4) dB
    data = slice_set()
    recon = Reconstructions(data.images + 0.01, data.images + 0.02, data.images + 0.001)
    result = score_point({k: v for k, v in ENTRY.items() if k != "wall_time_s"}, PARAMS, data, data, recon, no_cs())
    assert result.metrics["mse"] == pytest.approx(1e-4, rel=1e-4)
    d = result.diagnostics
    assert d["psnr_gap_db"] == pytest.approx(20.0, abs=1e-3) and d["mse_ratio"] == pytest.approx(100.0, rel=1e-3)
    assert d["noise_drop_db"] == pytest.approx(10 * math.log10(4), abs=1e-3) and d["overfit"] is True
    assert d["train_psnr"] - result.metrics["psnr"] == pytest.approx(d["psnr_gap_db"])
    assert math.isnan(result.wall_time_s)


def test_evaluate_point_loads_the_checkpoint_and_scores_its_reconstructions(tmp_path):
    import keras

    from mrirecon.config import ModelSettings
    from mrirecon.grid import GridPoint
    from mrirecon.models.checkpoint import ModelSpec, save_checkpoint
    from mrirecon.models.training import build_model, reconstruct

    # a point trained with synthetic phase must be reconstructed from k-space with that phase
    point, settings = GridPoint(**{**PARAMS, "synthetic_phase": True}), ModelSettings(base_filters=2)
    model = build_model(point, SIZE, settings)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in model.get_weights()])
    save_checkpoint(model, ModelSpec(point, settings, SIZE, "run-1"), tmp_path)
    test, train = slice_set(n=3), slice_set(n=2, seed=5)
    expected = reconstruct(model, "image", test, settings=settings, synthetic_phase=True)
    assert not np.allclose(expected, reconstruct(model, "image", test, settings=settings), atol=1e-4)
    keras.backend.clear_session()

    result, shown = evaluate_point(tmp_path, ENTRY, test, train, no_cs(noise_fraction=0.1))
    assert _per_slice(result.metrics) == pytest.approx(mean_metrics(test.images, expected, 0.05), rel=1e-4)
    _assert_intervals_hold_their_means(result.metrics)
    assert set(result.scores) >= {"psnr", "volume_psnr", "subjects"}
    np.testing.assert_allclose(shown, expected[[0, 2]], atol=1e-5)  # figure slices 0 and 2 of 3
    assert result.params == point.as_params() and result.run_id == "run-1"
    assert set(result.diagnostics) == set(DIAGNOSTICS)
    assert result.diagnostics["noisy_psnr"] != result.metrics["psnr"]  # the noise reached the network input


def _per_slice(metrics: dict) -> dict:
    """Today's per-slice means of a metrics dict (without the volume convention and intervals)."""
    return {k: metrics[k] for k in METRIC_NAMES}


def _assert_intervals_hold_their_means(metrics: dict) -> None:
    assert set(UNCERTAINTY_KEYS) <= set(metrics)
    for name in CI_METRICS:
        low, high = metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"]
        if name.startswith("volume_"):
            assert low <= metrics[name] <= high, name  # the point estimate is the mean over subjects
        else:  # equal slices per subject: the per-slice mean is the mean of subject means
            assert low <= metrics[name] + 1e-9 and metrics[name] <= high + 1e-9, name


def test_gap_slices_are_evenly_spaced_training_slices():
    data = slice_set(n=7)
    assert len(gap_slices(data, no_cs())) == 7  # null: all
    subset = gap_slices(data, no_cs(gap_slices=3))
    np.testing.assert_array_equal(subset.images, data.images[[0, 3, 6]])
