"""Array <-> model transforms: complex arrays as (real, imaginary) channels, and the k-space units of the models.

K-space scaling
    With the project's orthonormal centred FFT (:mod:`mrirecon.mri.fft`) Parseval holds,
    so k-space of a normalised 128x128 slice has an RMS of about 0.4, like the image, but
    its dynamic range is huge: the DC coefficient is ``mean(x) * sqrt(H W)`` (about 28 for
    the IXI T1 slices at 128x128) while the outer phase-encode lines have magnitudes of
    about 0.03-0.1, a ratio of roughly 1000. The models' k-space inputs and outputs are
    ``KSPACE_SCALE * fft2c(x)`` split into (real, imag) with ``KSPACE_SCALE = 1.0``
    (applied by :func:`mrirecon.models.training.model_inputs`, undone by :func:`kspace_to_image`),
    i.e. no extra normalisation beyond the orthonormal FFT, which already makes the values O(1)
    on average because the images are normalised per volume. This linear choice keeps
    data consistency exact and makes an MSE loss on the 2-channel k-space equal to half
    the complex image-domain MSE (Parseval), so k-space and image losses are comparable.
    The k-space CNN predicts a *residual* added to the input, and its last convolution is
    linear, so the large low-frequency values pass through untouched and the convolutions
    only have to produce the small missing high-frequency values. Alternatives were tried
    on the 525 IXI training slices (R = 4, 8 epochs, 5 layers): scaling by 20 and feeding
    the convolutions ``asinh``-compressed k-space trained equally well (validation PSNR
    within 0.25 dB; all +1.5 to +1.8 dB over zero filling), so the simplest was kept.
"""

from __future__ import annotations

import numpy as np

from mrirecon.mri.fft import ifft2c

KSPACE_SCALE = 1.0
"""Constant multiplying orthonormal centred k-space to give the models' k-space units (see module doc)."""


def complex_to_channels(z: np.ndarray) -> np.ndarray:
    """Complex ``(...)`` array -> float32 ``(..., 2)`` with (real, imaginary) channels."""
    return np.stack([z.real, z.imag], axis=-1).astype(np.float32)


def kspace_to_image(kspace_2ch: np.ndarray) -> np.ndarray:
    """Magnitude image of 2-channel scaled k-space (the k-space CNN's output units).

    ``|ifft2c((k[..., 0] + i k[..., 1]) / KSPACE_SCALE)|`` with the project's centred
    orthonormal inverse FFT (:func:`mrirecon.mri.fft.ifft2c`).

    Args:
        kspace_2ch: real ``(N, H, W, 2)`` k-space in model units (also accepts
            ``(H, W, 2)``).

    Returns:
        float32 magnitude images ``(N, H, W)`` (or ``(H, W)``).

    Raises:
        ValueError: if the last axis does not have length 2.
    """
    kspace_2ch = np.asarray(kspace_2ch)
    if kspace_2ch.ndim < 3 or kspace_2ch.shape[-1] != 2:
        raise ValueError(f"kspace_2ch must be (N, H, W, 2), got shape {kspace_2ch.shape}")
    k = kspace_2ch.astype(np.float64)
    complex_k = (k[..., 0] + 1j * k[..., 1]) / KSPACE_SCALE
    return np.abs(ifft2c(complex_k)).astype(np.float32)
