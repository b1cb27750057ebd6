"""The forward model of the experiments: which image is "scanned" and what k-space is measured.

IXI images are magnitude-only, so k-space simulated from them is Hermitian-symmetric and
each sampled line also reveals its mirror ("data crimes", Shimron et al. 2022, PNAS 119(13)
e2117203119). With ``synthetic_phase`` the scanned image is ``x exp(i phi)`` with a smooth
random phase (:mod:`mrirecon.mri.phase`), whose k-space is not symmetric; the magnitude, and so
every metric's reference, is unchanged.

Measured k-space: ``y = M (F(x) + n)`` with ``F`` the centred orthonormal FFT
(:mod:`mrirecon.mri.fft`) and optional complex Gaussian noise ``n`` (robustness checks).
"""

from __future__ import annotations

import numpy as np

from mrirecon.data.slice_set import SliceSet
from mrirecon.mri.fft import apply_mask, fft2c, ifft2c
from mrirecon.mri.phase import with_synthetic_phase
from mrirecon.seeding import rng_for


def simulated_truth(data: SliceSet, synthetic_phase: bool, phase_seed: int = 0) -> np.ndarray:
    """The scanned image: float32 magnitudes ``(N, H, W)``, or complex64 ``x exp(i phi)``
    per slice with ``synthetic_phase`` (phase seeded by ``(phase_seed, subject, slice)``)."""
    if not synthetic_phase:
        return data.images
    return with_synthetic_phase(data.images, data.subjects, data.slice_index, phase_seed)


def measure(
    data: SliceSet, synthetic_phase: bool = False, phase_seed: int = 0, noise_fraction: float = 0.0, noise_seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Measured (undersampled) k-space and the scanned image.

    Args:
        data: slices with their masks.
        synthetic_phase: scan ``x exp(i phi)`` instead of ``x`` (see module docstring).
        phase_seed: seed of the synthetic phase.
        noise_fraction: standard deviation of the added complex Gaussian k-space noise per
            real/imaginary part, as a fraction of the RMS of each slice's full k-space (0 = none).
        noise_seed: seed of the noise (private generator per slice).

    Returns:
        ``(measured complex128 (N, H, W), truth (N, H, W))``; unsampled columns are 0.
    """
    truth = simulated_truth(data, synthetic_phase, phase_seed)
    kspace = fft2c(truth)
    if noise_fraction > 0:
        for i in range(len(data)):
            rng = rng_for(noise_seed, "noise", data.subjects[i], int(data.slice_index[i]))
            sigma = noise_fraction * np.sqrt(np.mean(np.abs(kspace[i]) ** 2))
            kspace[i] = kspace[i] + sigma * (
                rng.standard_normal(kspace[i].shape) + 1j * rng.standard_normal(kspace[i].shape)
            )
    return apply_mask(kspace, data.masks[:, None, :]), truth


def zero_filled_magnitude(measured: np.ndarray) -> np.ndarray:
    """Zero-filled reconstruction ``|F^-1(y)|`` of measured k-space, float32 ``(N, H, W)``."""
    return np.abs(ifft2c(measured)).astype(np.float32)
