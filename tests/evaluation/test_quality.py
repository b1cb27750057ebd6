"""Issue-5 pieces that need no real data: forward model, diagnostics, report table, grid axis."""

import json

import numpy as np
import pytest

from mrirecon.data.slice_set import SliceSet
from mrirecon.evaluation.report import PointResult, diagnostics, metrics_report
from mrirecon.evaluation.tables import END, START, benchmark_table, update_readme
from mrirecon.grid import GridPoint, expand_grid
from mrirecon.mri.fft import fft2c
from mrirecon.mri.forward import measure, zero_filled_magnitude


def slice_set(n=3, size=16):
    rng = np.random.default_rng(0)
    masks = np.zeros((n, size), bool)
    masks[:, [0, 5, 7, 8, 9, 12]] = True
    return SliceSet(
        rng.random((n, size, size)).astype(np.float32),
        masks,
        [f"IXI{i:03d}-HH-0000" for i in range(n)],
        np.arange(n) + 40,
        4.0,
    )


def test_measure_with_phase_keeps_magnitude_and_breaks_hermitian_symmetry():
    data = slice_set()
    plain, truth = measure(data)
    np.testing.assert_allclose(plain[:, :, data.masks[0]], fft2c(data.images)[:, :, data.masks[0]], atol=1e-6)
    assert np.all(plain[:, :, ~data.masks[0]] == 0)
    phased, complex_truth = measure(data, synthetic_phase=True, phase_seed=3)
    np.testing.assert_allclose(np.abs(complex_truth), data.images, rtol=1e-5, atol=1e-6)
    assert not np.allclose(phased, plain)
    full = fft2c(complex_truth[0])
    mirrored = np.conj(np.roll(full[::-1, ::-1], 1, axis=(0, 1)))  # k[-r, -c] about DC at (H/2, W/2)
    assert np.linalg.norm(full - mirrored) / np.linalg.norm(full) > 0.1


def test_noise_is_seeded_and_scaled():
    data = slice_set()
    a, _ = measure(data, noise_fraction=0.1, noise_seed=1)
    b, _ = measure(data, noise_fraction=0.1, noise_seed=1)
    clean, _ = measure(data)
    np.testing.assert_array_equal(a, b)
    noise = (a - clean)[:, :, data.masks[0]]
    rms = np.sqrt(np.mean(np.abs(fft2c(data.images[0])) ** 2))
    # complex noise with std 0.1 * rms per real/imaginary part -> E|n|^2 = 2 (0.1 rms)^2
    assert np.sqrt(np.mean(np.abs(noise[0]) ** 2)) == pytest.approx(np.sqrt(2) * 0.1 * rms, rel=0.25)
    assert zero_filled_magnitude(clean).dtype == np.float32


def test_diagnostics_flag_overfitting():
    train = {"mse": 0.001, "psnr": 32.0}
    test = {"mse": 0.004, "psnr": 28.0}
    noisy = {"mse": 0.005, "psnr": 27.5}
    d = diagnostics(train, test, noisy, overfit_gap_db=1.0)
    assert d["psnr_gap_db"] == pytest.approx(4.0) and d["mse_ratio"] == pytest.approx(4.0)
    assert d["noise_drop_db"] == pytest.approx(0.5) and d["overfit"] is True
    assert diagnostics({"mse": 0.004, "psnr": 28.3}, test, noisy, 1.0)["overfit"] is False


def test_synthetic_phase_is_an_optional_grid_axis():
    grid = {"model": ["image"], "layers": [2], "batch_size": [8], "epochs": [1], "intensity": ["medium"]}
    assert [p.name for p in expand_grid(grid, ["medium"])] == ["image-L2-B8-E1-medium"]
    points = expand_grid({**grid, "synthetic_phase": [False, True]}, ["medium"])
    assert [p.name for p in points] == ["image-L2-B8-E1-medium", "image-L2-B8-E1-medium-phase"]
    assert points[1] == GridPoint("image", 2, 8, 1, "medium", True)


def _metrics(psnr):
    return {"mse": 0.01, "nmse": 0.05, "psnr": psnr, "ssim": 0.7, "pct_correct": 70.0}


def test_report_blocks_and_readme_table(tmp_path):
    params = {"model": "image", "layers": 3, "batch_size": 16, "epochs": 20, "intensity": "medium"}
    points = [
        PointResult("a", "run-a", params, 0.003, 4.0, _metrics(27.0)),
        PointResult("a-phase", "run-b", {**params, "synthetic_phase": True}, 0.004, 4.0, _metrics(25.0)),
    ]
    report = metrics_report(
        {"medium": 4.0},
        {"medium": _metrics(22.0)},
        points,
        cs_metrics={"medium": {**_metrics(24.0), "lambda": 0.003}},
        phase_baselines={"medium": {"zero_filled": _metrics(21.9), "cs": {**_metrics(23.8), "lambda": 0.003}}},
        effective={"medium": {"nominal": 4.0, "achieved": 4.1, "hermitian": 2.6}},
    )
    assert report["medium"]["best"]["run_id"] == "run-a" and report["medium"]["cs"]["lambda"] == 0.003
    assert report["synthetic_phase"]["medium"]["best"]["run_id"] == "run-b"
    assert set(report["synthetic_phase"]["medium"]) >= {"acceleration", "zero_filled", "cs", "best", "best_by_model"}
    json.dumps(report)
    table = benchmark_table(report)
    assert "| magnitude (Hermitian) | medium | 4 | CS (L1-wavelet) | 24.00 |" in table
    assert "| synthetic phase | medium | 4 | best: a-phase | 25.00 |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\nrest\n")
    assert update_readme(readme, table) is True
    assert "old" not in readme.read_text() and readme.read_text().endswith("rest\n")
    assert update_readme(readme, table) is False
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        update_readme(readme, table)


def test_model_inputs_for_every_model_variant():
    from mrirecon.models.training import ModelSettings, model_inputs

    data = slice_set(n=2, size=16)
    x, y = model_inputs("image", data)
    assert x.shape == (2, 16, 16, 1) and y.shape == (2, 16, 16, 1)
    x, y = model_inputs("image", data, ModelSettings(image_data_consistency=True), synthetic_phase=True)
    assert (
        x["zero_filled"].shape == (2, 16, 16, 2) and x["kspace"].shape == (2, 16, 16, 2) and x["mask"].shape == (2, 16)
    )
    np.testing.assert_allclose(np.hypot(y[..., 0], y[..., 1]), data.images, rtol=1e-5, atol=1e-6)
    _, magnitude = model_inputs("image", data, ModelSettings(image_data_consistency=True, refine_filters=4), True)
    np.testing.assert_allclose(magnitude[..., 0], data.images, rtol=1e-5, atol=1e-6)  # refined: magnitude target
    assert np.abs(y[..., 1]).max() > 0.01  # the target carries the synthetic phase
    x, y = model_inputs("kspace", data)
    assert x["kspace"].shape == (2, 16, 16, 2) and y.shape == (2, 16, 16, 2)
