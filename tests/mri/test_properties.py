"""Property tests (hypothesis): masks, the k-space transform and the metrics over their domains."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mrirecon.mri.fft import fft2c, ifft2c
from mrirecon.mri.metrics import mse, nmse, psnr, ssim
from mrirecon.mri.subsample import cartesian_mask, center_line_count
from mrirecon.seeding import rng_for

# fast and reproducible: few examples, no deadline (shared CPU), no example database on disk
FAST = settings(max_examples=50, deadline=None, database=None, derandomize=True)


@st.composite
def mask_domain(draw):
    """(W, R, cf) in the valid domain of cartesian_mask: 16 <= W <= 512, 1.5 <= R <= 12,
    cf > 0 with at least one centre line and round(W * cf) <= W / R."""
    width = draw(st.integers(16, 512))
    accel = draw(st.floats(1.5, 12.0, allow_nan=False))
    cf = draw(st.floats(0.5 / width, 1.0 / accel, allow_nan=False, exclude_min=False))
    n_low = center_line_count(width, cf)
    assume(1 <= n_low <= width / accel)
    return width, accel, cf


def centre_block(width: int, cf: float) -> slice:
    n_low = center_line_count(width, cf)
    start = (width - n_low + 1) // 2
    return slice(start, start + n_low)


@FAST
@given(mask_domain(), st.integers(0, 2**31 - 1))
def test_equispaced_mask_keeps_the_centre_and_w_over_r_lines(domain, seed):
    width, accel, cf = domain
    mask = cartesian_mask(width, accel, cf, rng_for(seed, "p"), "equispaced")
    assert mask.dtype == bool and mask.shape == (width,)
    assert mask[centre_block(width, cf)].all() and mask[width // 2]
    # Outside the centre the kept lines are round(offset + k s) with s = (W - n) / (W/R - n):
    # each side holds L/s +- 1 of them (L = side length - 0.5 on the left), so in total
    # W/R - 0.5/s - 2 <= kept <= W/R - 0.5/s + 2, and s >= 1: |kept - W/R| <= 2.5.
    assert abs(mask.sum() - width / accel) <= 2.5
    # consecutive lines left of the centre are floor(s) or ceil(s) apart
    n_low = center_line_count(width, cf)
    if width / accel - n_low > 1e-9:
        spacing = (width - n_low) / (width / accel - n_low)
        gaps = np.diff(np.flatnonzero(mask[: centre_block(width, cf).start]))
        assert set(gaps.tolist()) <= {math.floor(spacing), math.ceil(spacing)}


@FAST
@given(mask_domain(), st.integers(0, 2**31 - 1))
def test_random_mask_keeps_the_centre_and_w_over_r_lines_on_average(domain, seed):
    width, accel, cf = domain
    n_low = center_line_count(width, cf)
    draws = 200
    kept = np.empty(draws)
    for i in range(draws):
        mask = cartesian_mask(width, accel, cf, rng_for(seed, "r", i), "random")
        assert mask[centre_block(width, cf)].all()
        kept[i] = mask.sum()
    # Each of the W - n outer lines is kept with p = (W/R - n) / (W - n), so E[kept] = W/R
    # exactly; the mean of `draws` masks has standard deviation sqrt((W - n) p (1 - p) / draws).
    # A 6-sigma band fails by chance with probability ~2e-9 per example.
    p = (width / accel - n_low) / (width - n_low)
    sigma = math.sqrt((width - n_low) * p * (1 - p) / draws)
    assert abs(kept.mean() - width / accel) <= 6 * sigma + 1e-9
    assert kept.min() >= n_low


@FAST
@given(st.integers(1, 512), st.floats(1.0, 12.0), st.floats(0.0, 1.0))
def test_masks_outside_the_domain_raise_and_inside_never_do(width, accel, cf):
    n_low = center_line_count(width, cf)
    valid = cf > 0 and n_low <= width / accel + 1e-9
    for kind in ("random", "equispaced"):
        if valid:
            assert cartesian_mask(width, accel, cf, rng_for(0), kind).sum() >= n_low
        else:
            with pytest.raises(ValueError):
                cartesian_mask(width, accel, cf, rng_for(0), kind)


def test_full_sampling_at_acceleration_one():
    for kind in ("random", "equispaced"):
        assert cartesian_mask(64, 1.0, 0.5, rng_for(3), kind).all()


# --- k-space: the centred orthonormal FFT ---

shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@FAST
@given(
    shapes.flatmap(
        lambda s: st.tuples(hnp.arrays(np.float64, s, elements=finite), hnp.arrays(np.float64, s, elements=finite))
    )
)
def test_fft_round_trip_and_parseval(pair):
    real, imag = pair
    image = real + 1j * imag
    kspace = fft2c(image)
    scale = max(1.0, float(np.abs(image).max()))
    np.testing.assert_allclose(ifft2c(kspace), image, rtol=0, atol=1e-12 * scale * image.size)
    energy = float(np.sum(np.abs(image) ** 2))
    assert float(np.sum(np.abs(kspace) ** 2)) == pytest.approx(energy, rel=1e-10, abs=1e-12 * scale**2)


@FAST
@given(st.integers(1, 33), st.integers(1, 33), finite)
def test_constant_image_has_only_a_dc_term_at_the_centre(h, w, value):
    kspace = fft2c(np.full((h, w), value))
    expected = np.zeros((h, w), complex)
    expected[h // 2, w // 2] = value * math.sqrt(h * w)
    np.testing.assert_allclose(kspace, expected, atol=1e-9 * max(1.0, abs(value)) * math.sqrt(h * w))


# --- metrics ---

images = st.tuples(st.integers(7, 24), st.integers(7, 24), st.integers(0, 2**31 - 1))


def _pair(spec):
    h, w, seed = spec
    rng = np.random.default_rng(seed)
    ref = rng.random((h, w)) + 0.01  # positive maximum: data_range defined
    est = ref + rng.normal(0, 0.1, (h, w))
    return ref, est


@FAST
@given(images)
def test_identical_images_psnr_inf_ssim_one_nmse_zero(spec):
    ref, _ = _pair(spec)
    assert psnr(ref, ref.copy()) == float("inf")
    assert ssim(ref, ref.copy()) == pytest.approx(1.0, abs=1e-12)
    assert nmse(ref, ref.copy()) == 0.0 and mse(ref, ref.copy()) == 0.0


@FAST
@given(images, st.floats(1e-3, 1e3).flatmap(lambda a: st.sampled_from([a, -a])))
def test_nmse_is_scale_invariant(spec, scale):
    ref, est = _pair(spec)
    assert nmse(scale * ref, scale * est) == pytest.approx(nmse(ref, est), rel=1e-9)


@FAST
@given(images)
def test_mse_is_symmetric_and_psnr_ssim_bounded(spec):
    ref, est = _pair(spec)
    assert mse(ref, est) == mse(est, ref)
    assert mse(ref, est) > 0
    assert psnr(ref, est) == pytest.approx(10 * math.log10(ref.max() ** 2 / mse(ref, est)), rel=1e-12)
    assert -1.0 <= ssim(ref, est) < 1.0
