"""Image-quality metrics for reconstructed magnitude slices.

All metrics compare a *reference* (the fully sampled magnitude slice) with an *estimate*
(a reconstruction) of the same shape. Conventions (see :data:`CONVENTIONS`):

* Images are real magnitude images, float, normalised per volume (99.5th percentile = 1).
* MSE, NMSE and PSNR follow the fastMRI evaluation code (Zbontar et al. 2018,
  "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI", arXiv:1811.08839):
  ``NMSE = ||ref - est||_2^2 / ||ref||_2^2`` and ``PSNR = 10 log10(data_range^2 / MSE)``.
* SSIM is Wang et al. 2004 ("Image quality assessment: from error visibility to structural
  similarity", IEEE TIP 13(4):600-612) computed by
  :func:`skimage.metrics.structural_similarity` with a 7x7 uniform window.
* ``data_range`` defaults to the maximum of the *reference slice* (fastMRI uses the
  reference volume's maximum; here every metric is a per-slice quantity).
* Stacks of slices are scored per slice, then the per-slice values are averaged.

Computation is in float64 whatever the input dtype. Pure numpy + scikit-image.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

SSIM_WIN_SIZE = 7
"""Side of the square SSIM window (pixels); uniform weights (``gaussian_weights=False``)."""

METRIC_NAMES = ("mse", "nmse", "psnr", "ssim", "pct_correct")
"""Keys of the dicts returned by :func:`slice_metrics` and :func:`mean_metrics`."""

CONVENTIONS: dict[str, str] = {
    "images": (
        "Real magnitude images (float), normalised per volume so that the volume's 99.5th "
        "percentile is 1.0; reference = fully sampled slice, estimate = reconstruction. "
        "All arithmetic in float64."
    ),
    "mse": "mean over pixels of (reference - estimate)^2, in squared normalised intensity units.",
    "nmse": (
        "||reference - estimate||_2^2 / ||reference||_2^2 (dimensionless), as in the fastMRI "
        "evaluation code (Zbontar et al. 2018, arXiv:1811.08839)."
    ),
    "data_range": (
        "Default data_range = max of the reference *slice* (not the volume, unlike fastMRI's "
        "volume-wise evaluation); used by PSNR and SSIM. A reference slice whose max is <= 0 "
        "is rejected (ValueError)."
    ),
    "psnr": (
        "10 * log10(data_range^2 / MSE) in dB (fastMRI convention); +inf when the images are identical (MSE = 0)."
    ),
    "ssim": (
        "Wang et al. 2004 SSIM via skimage.metrics.structural_similarity on the 2D slice: "
        "7x7 uniform (box) window (win_size=7, gaussian_weights=False), K1=0.01, K2=0.03, "
        "sample covariance, data_range as above; the SSIM map is averaged over the pixels "
        "at least 3 pixels from the border (skimage's cropping)."
    ),
    "pct_correct": (
        "Percentage (0-100) of pixels with |reference - estimate| <= tolerance * "
        "max(reference slice); tolerance is a fraction (e.g. 0.05 = within 5% of the slice "
        "maximum). Project-defined metric, not part of fastMRI."
    ),
    "aggregation": (
        "Stacks (N, H, W) are scored per slice, then the N per-slice values of each metric "
        "are averaged with an unweighted arithmetic mean ('per slice, then mean'). A slice "
        "with PSNR = +inf makes the mean PSNR +inf."
    ),
}


def _pair(reference: np.ndarray, estimate: np.ndarray, ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a reference/estimate pair and return float64 copies."""
    ref = np.asarray(reference)
    est = np.asarray(estimate)
    if ref.shape != est.shape:
        raise ValueError(f"shape mismatch: reference has shape {ref.shape}, estimate has shape {est.shape}")
    if np.iscomplexobj(ref) or np.iscomplexobj(est):
        raise ValueError("metrics expect real magnitude images; take np.abs() of complex images first")
    if ndim is not None and ref.ndim != ndim:
        raise ValueError(f"expected {ndim}D arrays, got shape {ref.shape}")
    if ref.size == 0:
        raise ValueError("cannot compute metrics on empty arrays")
    return ref.astype(np.float64, copy=False), est.astype(np.float64, copy=False)


def _data_range(ref: np.ndarray, data_range: float | None) -> float:
    """Default data range = reference max; must be positive and finite."""
    value = float(ref.max()) if data_range is None else float(data_range)
    if not np.isfinite(value) or value <= 0:
        source = "reference.max()" if data_range is None else "data_range"
        raise ValueError(f"data range must be positive and finite, got {source} = {value}")
    return value


def mse(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean squared error ``mean((reference - estimate)^2)``.

    Args:
        reference: real array, any shape (typically a float32 ``(H, W)`` slice).
        estimate: real array of the same shape.

    Returns:
        MSE as a Python float (squared intensity units), computed in float64.

    Raises:
        ValueError: on a shape mismatch, complex input or empty arrays.
    """
    ref, est = _pair(reference, estimate)
    return float(np.mean((ref - est) ** 2))


def nmse(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Normalised MSE ``||reference - estimate||^2 / ||reference||^2`` (fastMRI).

    Formula from the fastMRI evaluation code (Zbontar et al. 2018, arXiv:1811.08839);
    the norms are Frobenius norms over all elements.

    Args:
        reference: real array, any shape.
        estimate: real array of the same shape.

    Returns:
        NMSE (dimensionless) as a Python float; 0 for identical arrays.

    Raises:
        ValueError: on a shape mismatch, complex input, empty arrays, or an all-zero
            reference (NMSE undefined).
    """
    ref, est = _pair(reference, estimate)
    denom = float(np.sum(ref**2))
    if denom == 0.0:
        raise ValueError("NMSE is undefined for an all-zero reference")
    return float(np.sum((ref - est) ** 2) / denom)


def psnr(reference: np.ndarray, estimate: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB (fastMRI).

    Args:
        reference: real array, any shape (typically one ``(H, W)`` slice).
        estimate: real array of the same shape.
        data_range: peak value; default ``reference.max()`` (the slice's maximum).

    Returns:
        PSNR in dB as a Python float; ``inf`` when ``estimate == reference`` everywhere.

    Raises:
        ValueError: on a shape mismatch, complex input, empty arrays, or a data range
            that is not positive and finite.
    """
    ref, est = _pair(reference, estimate)
    peak = _data_range(ref, data_range)
    err = float(np.mean((ref - est) ** 2))
    if err == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak**2 / err))


def ssim(reference: np.ndarray, estimate: np.ndarray, data_range: float | None = None) -> float:
    """Structural similarity (Wang et al. 2004) of two 2D slices.

    Computed by :func:`skimage.metrics.structural_similarity` with a **7x7 uniform
    window** (``win_size=7``, ``gaussian_weights=False``), K1 = 0.01, K2 = 0.03 and
    sample covariance (skimage defaults), as in the fastMRI evaluation code but per slice.

    Args:
        reference: real 2D array ``(H, W)`` with ``H, W >= 7``.
        estimate: real 2D array of the same shape.
        data_range: dynamic range used in the SSIM constants; default
            ``reference.max()`` (the slice's maximum).

    Returns:
        Mean SSIM (dimensionless, at most 1.0; 1.0 for identical images) as a Python float.

    Raises:
        ValueError: on a shape mismatch, non-2D or complex input, a data range that is not
            positive and finite, or a slice smaller than the 7x7 window.
    """
    ref, est = _pair(reference, estimate, ndim=2)
    if min(ref.shape) < SSIM_WIN_SIZE:
        raise ValueError(f"SSIM needs slices of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got {ref.shape}")
    peak = _data_range(ref, data_range)
    value = structural_similarity(ref, est, data_range=peak, win_size=SSIM_WIN_SIZE, gaussian_weights=False)
    return float(value)


def pct_correct(reference: np.ndarray, estimate: np.ndarray, tolerance: float) -> float:
    """Percentage of pixels within ``tolerance * reference.max()`` of the reference.

    A pixel is *correct* when ``|reference - estimate| <= tolerance * reference.max()``
    (inclusive). Project-defined metric (not part of fastMRI).

    Args:
        reference: real array, any shape (typically one ``(H, W)`` slice).
        estimate: real array of the same shape.
        tolerance: fraction of the reference maximum, ``>= 0`` (e.g. 0.05 for 5%).

    Returns:
        Percentage in ``[0, 100]`` as a Python float.

    Raises:
        ValueError: on a shape mismatch, complex input, empty arrays, a negative or
            non-finite tolerance, or a reference whose maximum is not positive.
    """
    ref, est = _pair(reference, estimate)
    tol = float(tolerance)
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tolerance must be a finite fraction >= 0, got {tolerance}")
    threshold = tol * _data_range(ref, None)
    return float(100.0 * np.count_nonzero(np.abs(ref - est) <= threshold) / ref.size)


def slice_metrics(reference: np.ndarray, estimate: np.ndarray, tolerance: float) -> dict[str, float]:
    """All metrics for one 2D slice, with the default ``data_range = reference.max()``.

    Args:
        reference: real ``(H, W)`` fully sampled magnitude slice.
        estimate: real ``(H, W)`` reconstruction.
        tolerance: :func:`pct_correct` tolerance (fraction of the slice maximum).

    Returns:
        ``{"mse", "nmse", "psnr" (dB), "ssim", "pct_correct" (%)}`` as Python floats.

    Raises:
        ValueError: on a shape mismatch (naming both shapes), non-2D input, or any error
            of the individual metrics.
    """
    ref, est = _pair(reference, estimate, ndim=2)
    return {
        "mse": mse(ref, est),
        "nmse": nmse(ref, est),
        "psnr": psnr(ref, est),
        "ssim": ssim(ref, est),
        "pct_correct": pct_correct(ref, est, tolerance),
    }


def mean_metrics(references: np.ndarray, estimates: np.ndarray, tolerance: float) -> dict[str, float]:
    """Metrics of a stack of slices: computed per slice, then mean over slices.

    Each metric is evaluated on every slice with :func:`slice_metrics` (so ``data_range``
    is each reference slice's own maximum), and the ``N`` values are averaged with an
    unweighted arithmetic mean ("per slice, then mean").

    Args:
        references: real ``(N, H, W)`` fully sampled magnitude slices, ``N >= 1``.
        estimates: real ``(N, H, W)`` reconstructions.
        tolerance: :func:`pct_correct` tolerance (fraction of each slice's maximum).

    Returns:
        ``{"mse", "nmse", "psnr" (dB), "ssim", "pct_correct" (%)}`` mean values as Python
        floats (``psnr`` is ``inf`` if any slice is reconstructed exactly).

    Raises:
        ValueError: on a shape mismatch (naming both shapes), input that is not 3D, an
            empty stack, or any error of the individual metrics.
    """
    refs, ests = _pair(references, estimates, ndim=3)
    per_slice = [slice_metrics(r, e, tolerance) for r, e in zip(refs, ests)]
    return {name: float(np.mean([m[name] for m in per_slice])) for name in METRIC_NAMES}
