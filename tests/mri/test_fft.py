import numpy as np
import pytest

from mrirecon.mri.fft import apply_mask, fft2c, ifft2c
from mrirecon.mri.forward import zero_filled_magnitude


def test_fft2c_matches_numpy_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 8)) + 1j * rng.normal(size=(6, 8))
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x))) / np.sqrt(48)
    np.testing.assert_allclose(fft2c(x), expected, atol=1e-12)


def test_centred_delta_has_flat_spectrum_and_dc_at_centre():
    x = np.zeros((8, 8))
    x[4, 4] = 1.0  # image centre
    np.testing.assert_allclose(fft2c(x), np.full((8, 8), 1 / 8), atol=1e-12)
    k = fft2c(np.ones((8, 8)))
    assert np.argmax(np.abs(k)) == 4 * 8 + 4
    assert abs(k[4, 4]) == pytest.approx(8.0)  # sum / sqrt(N) = 64 / 8


def test_round_trip_and_parseval_on_batches():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 16, 12)).astype(np.float32)
    k = fft2c(x)
    np.testing.assert_allclose(ifft2c(k).real, x, atol=1e-5)
    np.testing.assert_allclose(np.sum(np.abs(k) ** 2, axis=(1, 2)), np.sum(x**2, axis=(1, 2)), rtol=1e-5)


def test_full_mask_zero_filled_is_identity_and_mask_zeroes_columns():
    rng = np.random.default_rng(2)
    x = rng.random((16, 16)).astype(np.float32)
    np.testing.assert_allclose(zero_filled_magnitude(apply_mask(fft2c(x), np.ones(16, bool))), x, atol=1e-5)
    mask = np.zeros(16, bool)
    mask[[3, 8]] = True
    k = apply_mask(fft2c(x), mask)
    assert np.count_nonzero(np.abs(k).sum(axis=0)) == 2
    with pytest.raises(ValueError, match="15 lines"):
        apply_mask(fft2c(x), np.ones(15, bool))
