"""Metrics in the fastMRI *volume* convention: one value per test subject.

The fastMRI evaluation code (Zbontar et al. 2018, "fastMRI: An Open Dataset and Benchmarks for
Accelerated MRI", arXiv:1811.08839; its ``evaluate.py``) scores each *volume*, not each slice:

* ``NMSE = ||ref - est||_2^2 / ||ref||_2^2`` over all of the volume's voxels;
* ``PSNR = 10 log10(max(ref)^2 / MSE)`` with the volume maximum as data range and the MSE over
  the volume;
* ``SSIM``: the mean over the volume's slices of the 2D SSIM (7x7 uniform window, as in
  :func:`mrirecon.mri.metrics.ssim`) with the **volume** maximum as data range.

Here a "volume" is the set of a subject's selected test slices (``slices.per_subject`` adjacent
axial slices), so the values sit beside published volume-wise figures only approximately: the
volume maximum over a few central slices is close to, but not the same as, over the whole head.
Values are usually several dB above the per-slice convention, whose data range is each slice's
own maximum (:mod:`mrirecon.mri.metrics`). Pure numpy + scikit-image.
"""

from __future__ import annotations

import numpy as np

from mrirecon.mri.metrics import ssim

VOLUME_METRIC_NAMES = ("volume_nmse", "volume_psnr", "volume_ssim")
"""Keys of :func:`volume_metrics`; named apart from the per-slice ``nmse``/``psnr``/``ssim``."""


def volume_metrics(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """fastMRI volume-convention NMSE, PSNR (dB) and SSIM of one subject's slices.

    Args:
        reference: real ``(N, H, W)`` fully sampled magnitude slices of one subject, ``N >= 1``.
        estimate: real ``(N, H, W)`` reconstructions of the same slices.

    Returns:
        ``{"volume_nmse", "volume_psnr" (dB, +inf if identical), "volume_ssim"}`` as floats.

    Raises:
        ValueError: on a shape mismatch, input that is not 3D, or a reference whose maximum
            is not positive.
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape or ref.ndim != 3 or ref.shape[0] < 1:
        raise ValueError(f"volume metrics need two (N, H, W) stacks of one shape, got {ref.shape} and {est.shape}")
    peak = float(ref.max())
    if not peak > 0:
        raise ValueError(f"the reference volume's maximum must be positive, got {peak}")
    err = float(np.sum((ref - est) ** 2))
    mse = err / ref.size
    return {
        "volume_nmse": err / float(np.sum(ref**2)),
        "volume_psnr": float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse)),
        "volume_ssim": float(np.mean([ssim(r, e, data_range=peak) for r, e in zip(ref, est)])),
    }


def per_subject(references: np.ndarray, estimates: np.ndarray, subjects: list[str]) -> dict[str, dict[str, float]]:
    """:func:`volume_metrics` of each subject's slices, in first-seen subject order.

    Args:
        references, estimates: real ``(N, H, W)`` stacks.
        subjects: ``N`` subject ids, one per slice.

    Returns:
        ``{subject: {"volume_nmse", "volume_psnr", "volume_ssim"}}``.

    Raises:
        ValueError: if ``subjects`` does not have one entry per slice, or as :func:`volume_metrics`.
    """
    if len(subjects) != len(references):
        raise ValueError(f"{len(subjects)} subject ids for {len(references)} slices")
    ids = np.asarray(subjects)
    order = list(dict.fromkeys(subjects))
    return {s: volume_metrics(references[ids == s], estimates[ids == s]) for s in order}
