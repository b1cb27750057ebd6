"""Hand-computed checks of mrirecon.mri.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrirecon.mri import metrics


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    # multiples of 1/1024 in [0, 1): adding 0.125 in float32 is then exact
    img = (np.floor(rng.random((32, 32)) * 1024) / 1024).astype(np.float32)
    img[5, 7] = 2.0  # known maximum M = 2
    return img


def test_identical_images(image):
    assert metrics.mse(image, image) == 0.0
    assert metrics.nmse(image, image) == 0.0
    assert metrics.psnr(image, image) == math.inf
    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert metrics.pct_correct(image, image, 0.0) == 100.0
    result = metrics.slice_metrics(image, image, 0.05)
    assert set(result) == {"mse", "nmse", "psnr", "ssim", "pct_correct"}
    assert result["psnr"] == math.inf and result["pct_correct"] == 100.0


def test_constant_offset(image):
    c = 0.125  # exactly representable; image + c is exact in float32
    estimate = image + np.float32(c)
    assert metrics.mse(image, estimate) == c**2
    # PSNR = 10 log10(M^2 / c^2) with M = reference max = 2
    assert metrics.psnr(image, estimate) == pytest.approx(10 * math.log10(2.0**2 / c**2), rel=1e-6)
    # explicit data range overrides the slice maximum
    assert metrics.psnr(image, estimate, data_range=1.0) == pytest.approx(10 * math.log10(1 / c**2), rel=1e-6)
    # every pixel is off by exactly c = 0.0625 * M
    assert metrics.pct_correct(image, estimate, 0.0625) == 100.0
    assert metrics.pct_correct(image, estimate, 0.06) == 0.0


def test_nmse_by_hand():
    ref = np.array([[3.0, 4.0], [0.0, 0.0]])
    est = np.array([[3.0, 3.0], [1.0, 0.0]])
    # ||ref - est||^2 = 0 + 1 + 1 + 0 = 2, ||ref||^2 = 9 + 16 = 25
    assert metrics.nmse(ref, est) == pytest.approx(2 / 25)
    assert metrics.mse(ref, est) == pytest.approx(2 / 4)


def test_pct_correct_known_count():
    ref = np.array([[10.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # tolerance 0.1 * max 10 = 1.0; errors: 0, 0.5, 1.0 (boundary, counts), 1.5, 3, -0.9, -1.1, 0
    est = ref + np.array([[0.0, 0.5, 1.0, 1.5], [3.0, -0.9, -1.1, 0.0]])
    assert metrics.pct_correct(ref, est, 0.1) == pytest.approx(100 * 5 / 8)


def test_ssim_window_and_range(image):
    noisy = image + np.random.default_rng(1).normal(0, 0.1, image.shape).astype(np.float32)
    value = metrics.ssim(image, noisy)
    assert 0.0 < value < 1.0
    from skimage.metrics import structural_similarity

    expected = structural_similarity(
        image.astype(np.float64), noisy.astype(np.float64), data_range=2.0, win_size=7, gaussian_weights=False
    )
    assert value == pytest.approx(expected)
    assert "7x7" in metrics.CONVENTIONS["ssim"]


def test_mean_metrics_is_mean_of_slices(image):
    refs = np.stack([image, image * 0.5, image + 1.0])
    ests = refs + np.random.default_rng(2).normal(0, 0.05, refs.shape).astype(np.float32)
    per_slice = [metrics.slice_metrics(r, e, 0.05) for r, e in zip(refs, ests)]
    mean = metrics.mean_metrics(refs, ests, 0.05)
    for key in metrics.METRIC_NAMES:
        assert mean[key] == pytest.approx(np.mean([m[key] for m in per_slice]))


def test_shape_mismatch_names_both_shapes(image):
    with pytest.raises(ValueError, match=r"\(32, 32\).*\(32, 31\)"):
        metrics.slice_metrics(image, image[:, :31], 0.05)
    with pytest.raises(ValueError, match="shape"):
        metrics.mean_metrics(image[None], image[None, :, :31], 0.05)
    for fn in (metrics.mse, metrics.nmse, metrics.psnr, metrics.ssim):
        with pytest.raises(ValueError):
            fn(image, image[:31])


def test_invalid_inputs(image):
    zeros = np.zeros((8, 8))
    with pytest.raises(ValueError):
        metrics.nmse(zeros, zeros)
    with pytest.raises(ValueError):
        metrics.psnr(zeros, zeros + 1)
    with pytest.raises(ValueError):
        metrics.pct_correct(image, image, -0.1)
    with pytest.raises(ValueError):
        metrics.mean_metrics(image, image, 0.05)  # 2D is not a stack
    with pytest.raises(ValueError):
        metrics.ssim(image.astype(np.complex64), image)
