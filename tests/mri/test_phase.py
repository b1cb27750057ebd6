import numpy as np
import pytest
from helpers import ixi_slice

from mrirecon.mri.fft import apply_mask, fft2c
from mrirecon.mri.phase import (
    effective_acceleration,
    mirror_index,
    mirror_lines,
    smooth_phase,
    with_synthetic_phase,
)
from mrirecon.mri.subsample import achieved_acceleration, cartesian_mask
from mrirecon.seeding import rng_for


def hermitian_asymmetry(kspace: np.ndarray) -> float:
    """Relative departure of k-space from Hermitian symmetry (the test's measure of the data crime).

    ``||k - conj(k[mirror rows, mirror columns])||_2 / ||k||_2`` over the last two axes of a
    complex ``(..., H, W)`` centred k-space (all leading axes pooled), mirrored indices from
    :func:`mirror_index`. Dimensionless: 0 (up to rounding) for the k-space of a real image,
    and ``2 ||Im x||_2 / ||x||_2`` for the k-space of a complex image ``x`` because
    ``k - conj(k_mirrored) = F(x - conj x) = F(2i Im x)`` and ``F`` is unitary.
    """
    k = np.asarray(kspace)
    h, w = k.shape[-2:]
    mirrored = np.conj(k[..., mirror_index(h)[:, None], mirror_index(w)[None, :]])
    return float(np.linalg.norm(k - mirrored) / np.linalg.norm(k))


def phantom(size: int = 128) -> np.ndarray:
    """Real, non-symmetric test image: ellipses plus a little deterministic texture."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    img = np.zeros((size, size))
    for a, b, cx, cy, v in [(0.7, 0.9, 0.05, 0, 1.0), (0.2, 0.1, 0.2, 0.3, 0.5), (0.1, 0.25, -0.3, -0.1, 0.4)]:
        img[((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1] += v
    img += 0.05 * np.random.default_rng(3).random((size, size))
    return img.astype(np.float32)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 127, 128])
def test_mirror_index_maps_each_frequency_to_its_negative(n):
    freqs = np.round(np.fft.fftshift(np.fft.fftfreq(n)) * n).astype(int)  # centred FFT: DC at n // 2
    mirror = mirror_index(n)
    assert freqs[n // 2] == 0
    np.testing.assert_array_equal((freqs[mirror] + freqs) % n, 0)
    np.testing.assert_array_equal(mirror[mirror], np.arange(n))
    if n % 2 == 0:
        np.testing.assert_array_equal(mirror, (n - np.arange(n)) % n)


def test_mirror_lines_and_effective_acceleration_by_hand():
    mask = np.zeros(8, bool)
    mask[[4, 5]] = True  # DC (4) and +1 (5); the mirror of 5 is 3
    np.testing.assert_array_equal(np.flatnonzero(mirror_lines(mask)), [3, 4, 5])
    assert effective_acceleration(mask, hermitian=True) == pytest.approx(8 / 3)
    assert effective_acceleration(mask, hermitian=False) == pytest.approx(4.0)
    nyquist = np.zeros(8, bool)
    nyquist[0] = True  # index 0 (frequency -4) is its own mirror
    np.testing.assert_array_equal(mirror_lines(nyquist), nyquist)
    stack = np.stack([mask, nyquist, np.zeros(8, bool)])
    np.testing.assert_allclose(effective_acceleration(stack, hermitian=True), [8 / 3, 8.0, np.inf])
    with pytest.raises(ValueError, match="phase-encode line"):
        mirror_lines(np.zeros(0, bool))


def test_nominal_4x_random_mask_is_about_2_6x_with_hermitian_symmetry():
    effective = []
    for seed in range(20):
        mask = cartesian_mask(128, 4, 0.08, rng_for(seed, "mask"))
        eff = effective_acceleration(mask, hermitian=True)
        assert eff < achieved_acceleration(mask)
        assert effective_acceleration(mask, hermitian=False) == pytest.approx(achieved_acceleration(mask))
        effective.append(eff)
    assert max(effective) < 3.3
    assert 2.3 < np.mean(effective) < 2.9  # expected ~2.6 (pairs of lines: 1 - (1 - p)^2)


def test_real_image_kspace_is_hermitian_and_mirrored_lines_are_known():
    img = phantom()
    k = fft2c(img.astype(np.float64))
    h, w = k.shape
    for r, c in [(0, 0), (3, 70), (64, 64), (100, 5), (127, 127)]:
        assert k[(h - r) % h, (w - c) % w] == pytest.approx(np.conj(k[r, c]), abs=1e-10)
    assert hermitian_asymmetry(k) < 1e-12
    # The data crime: every mirrored line of a sampled real image is recoverable exactly.
    mask = cartesian_mask(128, 4, 0.08, rng_for(0, "mask"))
    measured = apply_mask(k, mask)
    recovered = np.where(mask, measured, np.conj(measured[mirror_index(h)][:, mirror_index(w)]))
    known = mirror_lines(mask)
    np.testing.assert_allclose(recovered[:, known], k[:, known], atol=1e-10)


def test_synthetic_phase_breaks_hermitian_symmetry():
    img = phantom()
    complex_img = with_synthetic_phase(img[None], ["IXI999-HH-0000"], [60], seed=0)[0]
    k = fft2c(complex_img.astype(np.complex128))
    asym = hermitian_asymmetry(k)
    assert asym > 0.1
    expected = 2 * np.linalg.norm(complex_img.imag) / np.linalg.norm(complex_img)  # F unitary
    assert asym == pytest.approx(expected, rel=1e-5)
    mask = cartesian_mask(128, 4, 0.08, rng_for(0, "mask"))
    measured = apply_mask(k, mask)
    mirrored = np.conj(measured[mirror_index(128)][:, mirror_index(128)])
    only_mirrored = mirror_lines(mask) & ~mask
    err = np.linalg.norm(mirrored[:, only_mirrored] - k[:, only_mirrored]) / np.linalg.norm(k[:, only_mirrored])
    assert err > 0.1


def test_smooth_phase_range_dtype_smoothness_and_errors():
    phi = smooth_phase((128, 96), np.random.default_rng(0), max_order=3, max_radians=np.pi)
    assert phi.shape == (128, 96) and phi.dtype == np.float32
    assert phi.min() == pytest.approx(-np.pi, abs=1e-5) and phi.max() == pytest.approx(np.pi, abs=1e-5)
    # Smooth: a cubic over [-1, 1] scaled to a 2*pi range changes by well under 0.5 rad per pixel.
    assert np.abs(np.diff(phi, axis=0)).max() < 0.5 and np.abs(np.diff(phi, axis=1)).max() < 0.5
    half = smooth_phase((32, 32), np.random.default_rng(0), max_order=1, max_radians=0.5)
    assert np.abs(half).max() == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_array_equal(
        smooth_phase((16, 16), np.random.default_rng(5)), smooth_phase((16, 16), np.random.default_rng(5))
    )
    with pytest.raises(ValueError, match="max_order"):
        smooth_phase((8, 8), np.random.default_rng(0), max_order=0)
    with pytest.raises(ValueError, match="max_radians"):
        smooth_phase((8, 8), np.random.default_rng(0), max_radians=-1.0)
    with pytest.raises(ValueError, match="shape"):
        smooth_phase((8, 0), np.random.default_rng(0))


def test_with_synthetic_phase_keeps_magnitude_is_deterministic_and_leaves_global_rng():
    rng = np.random.default_rng(1)
    images = (1.5 * rng.random((3, 32, 32))).astype(np.float32)
    subjects = ["IXI001-HH-0001", "IXI001-HH-0001", "IXI002-Guys-0002"]
    slices = [60, 61, 60]
    np.random.seed(1234)
    before = np.random.get_state()
    out = with_synthetic_phase(images, subjects, slices, seed=7)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    assert out.dtype == np.complex64 and out.shape == images.shape
    np.testing.assert_allclose(np.abs(out), images, rtol=1e-6, atol=1e-7)
    # Same (seed, subject, slice) -> same phase, whatever else is in the batch.
    alone = with_synthetic_phase(images[2:], subjects[2:], slices[2:], seed=7)
    np.testing.assert_array_equal(alone[0], out[2])
    phase = np.angle(out)
    assert not np.allclose(phase[0], phase[1], atol=1e-3)  # other slice
    assert not np.allclose(phase[0], phase[2], atol=1e-3)  # other subject
    other_seed = with_synthetic_phase(images, subjects, slices, seed=8)
    assert not np.allclose(np.angle(other_seed[0]), phase[0], atol=1e-3)
    with pytest.raises(ValueError, match="3 images"):
        with_synthetic_phase(images, subjects[:2], slices, seed=7)
    with pytest.raises(ValueError, match="real"):
        with_synthetic_phase(images.astype(np.complex64), subjects, slices, seed=7)


@pytest.mark.e2e
def test_real_ixi_slice_kspace_is_hermitian_until_phase_is_added(real_source):
    img = ixi_slice(real_source)
    assert hermitian_asymmetry(fft2c(img.astype(np.float64))) < 1e-12
    complex_img = with_synthetic_phase(img[None], ["IXI-test"], [60], seed=0)
    np.testing.assert_allclose(np.abs(complex_img[0]), img, rtol=1e-6, atol=1e-7)
    assert hermitian_asymmetry(fft2c(complex_img.astype(np.complex128))) > 0.1
