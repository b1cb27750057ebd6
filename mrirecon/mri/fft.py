"""Centred, orthonormal 2D Fourier transforms: the project's one k-space convention.

An image slice ``x`` (rows, columns) has k-space ``y = F(x)`` where ``F`` is the centred
orthonormal 2D DFT ``fftshift(fft2(ifftshift(x), norm="ortho"))`` over the last two axes
(as in the fastMRI reference code, Zbontar et al. 2018, arXiv:1811.08839). The zero
frequency sits at index ``(H // 2, W // 2)`` and ``sum |x|^2 == sum |y|^2`` (Parseval).
The phase-encode direction is the last axis (columns); a Cartesian mask keeps whole
columns of k-space.
"""

from __future__ import annotations

import numpy as np

_AXES = (-2, -1)


def fft2c(image: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D FFT over the last two axes.

    Args:
        image: real or complex array ``(..., H, W)``.

    Returns:
        complex128 (or complex64 for float32/complex64 input) k-space ``(..., H, W)``,
        DC at ``(H // 2, W // 2)``.
    """
    shifted = np.fft.ifftshift(image, axes=_AXES)
    return np.fft.fftshift(np.fft.fft2(shifted, axes=_AXES, norm="ortho"), axes=_AXES)


def ifft2c(kspace: np.ndarray) -> np.ndarray:
    """Inverse of :func:`fft2c`: centred orthonormal 2D inverse FFT over the last two axes.

    Args:
        kspace: complex array ``(..., H, W)`` with DC at ``(H // 2, W // 2)``.

    Returns:
        complex image ``(..., H, W)``.
    """
    shifted = np.fft.ifftshift(kspace, axes=_AXES)
    return np.fft.fftshift(np.fft.ifft2(shifted, axes=_AXES, norm="ortho"), axes=_AXES)


def apply_mask(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep the sampled phase-encode lines (columns) of k-space, zero the others.

    Args:
        kspace: complex ``(..., H, W)``.
        mask: bool or {0, 1} ``(W,)`` (one flag per phase-encode line) or broadcastable
            to ``kspace``.

    Returns:
        complex ``(..., H, W)``: ``kspace * mask``.

    Raises:
        ValueError: if a 1D mask's length differs from the number of columns ``W``.
    """
    mask = np.asarray(mask)
    if mask.ndim == 1 and mask.shape[0] != kspace.shape[-1]:
        raise ValueError(f"mask has {mask.shape[0]} lines but k-space has {kspace.shape[-1]} columns")
    return kspace * mask.astype(kspace.real.dtype)
