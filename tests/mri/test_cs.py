import numpy as np
import pytest
import pywt
from helpers import ixi_slice

from mrirecon.mri.cs import (
    _check_geometry,
    _forward,
    _inverse,
    _prepare,
    _shrink,
    choose_lambda,
    cs_reconstruct_batch,
    cycle_spin_shifts,
)
from mrirecon.mri.fft import apply_mask, fft2c, ifft2c
from mrirecon.mri.metrics import psnr
from mrirecon.mri.phase import with_synthetic_phase
from mrirecon.mri.subsample import cartesian_mask
from mrirecon.seeding import rng_for

#: The wavelet most tests use (the project's own default, ``evaluate.cs_wavelet``, is set in config.py).
DB4 = {"wavelet": "db4", "cycle_spin": False}


def cs_reconstruct(kspace: np.ndarray, mask: np.ndarray, lam: float, iterations: int, **options) -> np.ndarray:
    """One slice through :func:`cs_reconstruct_batch`: complex ``(H, W)`` k-space and a ``(W,)`` mask
    in, complex64 ``(H, W)`` image out; ``options`` as the batch function (wavelet and cycle_spin required)."""
    return cs_reconstruct_batch(kspace[None], mask[None], lam, iterations, **options)[0]


def cs_objective(
    image: np.ndarray,
    kspace: np.ndarray,
    mask: np.ndarray,
    lam: float,
    wavelet: str,
    levels: int = 4,
    threshold_approximation: bool = False,
) -> float:
    """The objective ``0.5 ||M F x - y||_2^2 + lam ||Psi x||_1`` of one ``(H, W)`` slice (squared intensity
    units), the L1 norm over exactly the coefficients FISTA thresholds: the test's oracle of what it minimises."""
    y, m = _prepare(kspace[None], mask[None], lam, 0)
    wav = _check_geometry(y.shape, wavelet, levels)
    x = np.asarray(image).astype(np.complex128)[None]
    residual = fft2c(x) * m - y
    coeffs = _forward(x, wav, int(levels))
    bands = ([coeffs[0]] if threshold_approximation else []) + [b for level in coeffs[1:] for b in level]
    l1 = sum(float(np.sum(np.sqrt(b[:, 0] ** 2 + b[:, 1] ** 2))) for b in bands)
    return 0.5 * float(np.sum(np.abs(residual) ** 2)) + float(lam) * l1


def blocks(size: int = 128) -> np.ndarray:
    """Piecewise-constant phantom with edges on the dyadic grid: sparse in Haar/db wavelets."""
    img = np.zeros((size, size))
    img[16:112, 32:96] = 1.0
    img[32:64, 48:64] = 0.5
    img[80:96, 64:80] = 1.5
    img[48:56, 72:88] = 0.2
    return img


def mask_4x(key: object = 0) -> np.ndarray:
    return cartesian_mask(128, 4, 0.08, rng_for(0, "cs-test", key))


def measure(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return apply_mask(fft2c(image.astype(np.complex128)), mask)


def test_periodized_db4_transform_is_orthonormal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 128, 128)) + 1j * rng.normal(size=(2, 128, 128))
    wav = pywt.Wavelet("db4")
    coeffs = _forward(x, wav, 4)
    flat, _ = pywt.coeffs_to_array(coeffs, axes=(-2, -1))
    assert flat.shape == (2, 2, 128, 128)  # critically sampled
    assert np.sum(flat**2) == pytest.approx(np.sum(np.abs(x) ** 2), rel=1e-12)
    np.testing.assert_allclose(_inverse(coeffs, wav), x, atol=1e-12)


def test_soft_threshold_real_and_complex():
    def shrink(c: np.ndarray, lam: float) -> np.ndarray:  # complex (n,) <-> the solver's real-stacked (1, 2, 1, n)
        out = _shrink(np.stack([c.real, c.imag])[None, :, None, :], lam)
        return out[0, 0, 0] + 1j * out[0, 1, 0]

    real = np.array([-3.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(shrink(real, 1.0), [-2.0, 0.0, 0.0, 0.0, 1.0])  # sign(c) max(|c| - 1, 0)
    c = np.array([3 + 4j, 0.3 + 0.4j, 0j])
    np.testing.assert_allclose(shrink(c, 1.0), [(3 + 4j) * 4 / 5, 0, 0])  # modulus 5 -> 4, phase kept
    np.testing.assert_array_equal(shrink(c, 0.0), c)


def test_lam_zero_full_mask_returns_input_and_zero_iterations_give_zero_filled():
    rng = np.random.default_rng(1)
    x = rng.random((64, 64)) * np.exp(1j * rng.random((64, 64)))
    full = np.ones(64, bool)
    out = cs_reconstruct(fft2c(x), full, 0.0, 10, **DB4)
    assert out.dtype == np.complex64 and out.shape == (64, 64)
    np.testing.assert_allclose(out, x, atol=1e-6)
    mask = cartesian_mask(64, 4, 0.08, rng_for(0, "small"))
    k = measure(x, mask)
    np.testing.assert_allclose(cs_reconstruct(k, mask, 1e-2, 0, **DB4), ifft2c(k), atol=1e-6)
    np.testing.assert_allclose(cs_reconstruct(k, mask, 0.0, 5, **DB4), ifft2c(k), atol=1e-6)


def test_fista_reduces_the_objective():
    img = blocks()
    mask = mask_4x()
    k = measure(img, mask)
    lam = 1e-2
    start = cs_objective(ifft2c(k), k, mask, lam, "db4")
    values = [cs_objective(cs_reconstruct(k, mask, lam, n, **DB4), k, mask, lam, "db4") for n in (5, 20, 50)]
    assert values[-1] < values[0] < start
    assert values[-1] <= values[1] * (1 + 1e-6)
    assert values[-1] < 0.8 * start


@pytest.mark.parametrize(
    ("wavelet", "cycle_spin", "min_gain_db"),
    [("haar", False, 10.0), ("haar", True, 5.0), ("db4", False, 0.5), ("db4", True, 0.5)],
)
def test_cs_beats_zero_filled_on_sparse_phantom_at_4x(wavelet, cycle_spin, min_gain_db):
    # Blocks on the dyadic grid are exactly sparse in Haar: 50 iterations gain 15-45 dB over
    # zero-filling (4x random masks). Their edges are less sparse in db4: +0.8 to +2.7 dB.
    img = blocks()
    gains = []
    for key in range(3):
        mask = mask_4x(key)
        k = measure(img, mask)
        zf = psnr(img, np.abs(ifft2c(k)))
        recon = cs_reconstruct(k, mask, 1e-2, 50, wavelet=wavelet, cycle_spin=cycle_spin)
        gains.append(psnr(img, np.abs(recon)) - zf)
    assert min(gains) > min_gain_db


def test_batch_matches_single_slices_and_ignores_unsampled_entries():
    rng = np.random.default_rng(2)
    images = np.stack([blocks(), np.roll(blocks(), 16, axis=1), 0.5 * blocks().T])
    masks = np.stack([mask_4x(i) for i in range(3)])
    k = measure(images, masks[:, None, :])
    batch = cs_reconstruct_batch(k, masks, 1e-2, 10, **DB4, batch_size=2)
    assert batch.dtype == np.complex64 and batch.shape == images.shape
    for i in range(3):
        np.testing.assert_allclose(batch[i], cs_reconstruct(k[i], masks[i], 1e-2, 10, **DB4), atol=1e-6)
    noisy = k + (rng.normal(size=k.shape) * ~masks[:, None, :])  # junk outside the mask is ignored
    np.testing.assert_allclose(cs_reconstruct_batch(noisy, masks, 1e-2, 10, **DB4), batch, atol=1e-6)


def test_cycle_spin_is_deterministic_and_changes_the_result():
    shifts = cycle_spin_shifts(50, 4)
    assert shifts.shape == (50, 2) and shifts.min() >= 0 and shifts.max() < 16
    np.testing.assert_array_equal(shifts, cycle_spin_shifts(50, 4))
    img = blocks()
    mask = mask_4x()
    k = measure(img, mask)
    a = cs_reconstruct(k, mask, 1e-2, 30, wavelet="db4", cycle_spin=True)
    np.testing.assert_array_equal(a, cs_reconstruct(k, mask, 1e-2, 30, wavelet="db4", cycle_spin=True))
    assert not np.allclose(a, cs_reconstruct(k, mask, 1e-2, 30, **DB4), atol=1e-4)


def test_invalid_arguments_raise():
    k = np.zeros((1, 128, 128), complex)
    masks = np.ones((1, 128), bool)
    with pytest.raises(ValueError, match="divisible"):
        cs_reconstruct_batch(np.zeros((1, 120, 120), complex), np.ones((1, 120), bool), 1e-3, 50, **DB4, levels=4)
    with pytest.raises(ValueError, match="not orthogonal"):
        cs_reconstruct_batch(k, masks, 1e-3, 50, wavelet="bior2.2", cycle_spin=False)
    with pytest.raises(ValueError, match="lam"):
        cs_reconstruct_batch(k, masks, -1.0, 50, **DB4)
    with pytest.raises(ValueError, match="iterations"):
        cs_reconstruct_batch(k, masks, 1e-3, -1, **DB4)
    with pytest.raises(ValueError, match="masks"):
        cs_reconstruct_batch(k, np.ones((1, 64), bool), 1e-3, 50, **DB4)
    with pytest.raises(ValueError, match="lambdas"):
        choose_lambda(np.abs(k).real, masks, [], 0.05, 50, **DB4)


def test_choose_lambda_returns_a_candidate_and_scores_all():
    images = np.stack([blocks(), np.roll(blocks(), 8, axis=0), np.roll(blocks(), 24, axis=1)]).astype(np.float32)
    masks = np.stack([mask_4x(i) for i in range(3)])
    lambdas = (1e-4, 1e-2, 0.3)
    best, scores = choose_lambda(images, masks, lambdas, 0.05, 20, **DB4)
    assert best in lambdas and set(scores) == set(lambdas)
    assert scores[best] == max(scores.values())
    assert scores[1e-2] > scores[0.3]  # a huge weight wipes out detail
    phased = with_synthetic_phase(images, ["a", "b", "c"], [0, 1, 2], seed=0)
    best_p, scores_p = choose_lambda(
        images, masks, lambdas, 0.05, 20, wavelet="haar", cycle_spin=False, phase_images=phased
    )
    assert best_p in lambdas and set(scores_p) == set(lambdas)
    assert all(np.isfinite(v) for v in scores_p.values())


@pytest.mark.e2e
def test_cs_beats_zero_filled_on_a_real_ixi_slice_at_4x(real_source):
    img = ixi_slice(real_source)
    mask = cartesian_mask(128, 4, 0.08, rng_for(0, "e2e", 4))
    k = measure(img, mask)
    zf = psnr(img, np.abs(ifft2c(k)))
    plain = psnr(img, np.abs(cs_reconstruct(k, mask, 1e-3, 50, **DB4)))
    spun = psnr(img, np.abs(cs_reconstruct(k, mask, 3e-3, 50, wavelet="haar", cycle_spin=True)))
    assert plain > zf + 0.2  # measured +0.4 dB
    assert spun > zf + 1.5  # measured +2.6 dB
