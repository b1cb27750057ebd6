"""95% bootstrap confidence intervals over test subjects, for means and paired differences.

Slices of one subject are not independent, so the resampling unit is the **subject**: a
metric is first averaged over each subject's slices, then subjects are resampled with
replacement (Efron & Tibshirani 1993, "An Introduction to the Bootstrap", percentile
interval). Paired differences (method A - method B on the same subjects) resample the
per-subject differences, which is what tells two methods apart. Computed with
:func:`scipy.stats.bootstrap` (``method="percentile"``), seeded, so a report is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import bootstrap

from mrirecon.mri.metrics import METRIC_NAMES, slice_metrics
from mrirecon.mri.volume_metrics import VOLUME_METRIC_NAMES, per_subject

CONFIDENCE = 0.95
RESAMPLES = 2000


def subject_means(values: Sequence[float], subjects: Sequence[str]) -> np.ndarray:
    """Mean of per-slice ``values`` within each subject, in first-seen subject order.

    Args:
        values: ``N`` per-slice values (e.g. PSNR in dB).
        subjects: ``N`` subject ids.

    Returns:
        float64 ``(S,)`` array, one mean per distinct subject.

    Raises:
        ValueError: if the lengths differ or there are no values.
    """
    if len(values) != len(subjects) or not len(values):
        raise ValueError(f"need one subject id per value, got {len(values)} values and {len(subjects)} ids")
    ids, vals = np.asarray(subjects), np.asarray(values, dtype=np.float64)
    return np.array([vals[ids == s].mean() for s in dict.fromkeys(subjects)])


def mean_ci(
    per_subject: Sequence[float] | np.ndarray, seed: int = 0, confidence: float = CONFIDENCE, resamples: int = RESAMPLES
) -> dict[str, float]:
    """Mean over subjects with a percentile-bootstrap confidence interval.

    Args:
        per_subject: one value per subject (``S >= 1``), e.g. from :func:`subject_means`.
        seed: seed of the resampling generator.
        confidence: interval level (0.95 = 95%).
        resamples: bootstrap resamples.

    Returns:
        ``{"mean", "ci_low", "ci_high", "n_subjects"}``; with one subject, or values that are
        all equal, the interval collapses to the mean. Non-finite values (e.g. PSNR = +inf
        of an exact reconstruction) give a NaN interval.
    """
    x = np.asarray(per_subject, dtype=np.float64)
    if x.ndim != 1 or not len(x):
        raise ValueError(f"need a non-empty 1D array of per-subject values, got shape {x.shape}")
    mean = float(x.mean())
    if not np.all(np.isfinite(x)):
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n_subjects": len(x)}
    if len(x) == 1 or np.ptp(x) == 0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "n_subjects": len(x)}
    res = bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return {"mean": mean, "ci_low": float(low), "ci_high": float(high), "n_subjects": len(x)}


def paired_difference_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> dict[str, float]:
    """Mean of ``a - b`` over the same subjects with a bootstrap CI of the paired difference.

    Args:
        a, b: per-subject values of two methods, in the same subject order.

    Returns:
        as :func:`mean_ci`, for the differences (``"mean"`` > 0: ``a`` higher on average);
        the difference is *resolved* when the interval excludes 0.

    Raises:
        ValueError: if ``a`` and ``b`` differ in length.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need the same subjects, got {len(a)} and {len(b)}")
    return mean_ci(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), seed, confidence, resamples)


#: Metrics given a confidence interval: the per-slice convention (averaged within each subject first)
#: and the fastMRI volume convention (:mod:`mrirecon.mri.volume_metrics`).
CI_METRICS = ("psnr", "ssim", "nmse", "volume_psnr", "volume_ssim", "volume_nmse")
#: Keys :func:`with_uncertainty` adds to a metrics dict, in report order.
UNCERTAINTY_KEYS = (
    *VOLUME_METRIC_NAMES,
    *(f"{m}_ci_{side}" for m in CI_METRICS for side in ("low", "high")),
)
#: Metrics of the paired differences between two methods (:func:`paired_differences`).
DIFFERENCE_METRICS = ("psnr", "ssim", "volume_psnr")


def subject_scores(
    references: np.ndarray, estimates: np.ndarray, subjects: Sequence[str], tolerance: float
) -> dict[str, np.ndarray]:
    """Per-subject values of every metric, the unit a bootstrap resamples.

    Args:
        references: real ``(N, H, W)`` fully sampled magnitudes.
        estimates: real ``(N, H, W)`` reconstructions.
        subjects: ``N`` subject ids, one per slice.
        tolerance: ``pct_correct`` tolerance (:func:`mrirecon.mri.metrics.slice_metrics`).

    Returns:
        ``{metric: float64 (S,)}`` in first-seen subject order, plus ``"subjects"``: the ids. The
        per-slice metrics (``mse``, ``nmse``, ``psnr`` in dB, ``ssim``, ``pct_correct``) are means over
        the subject's slices; ``volume_*`` are :func:`mrirecon.mri.volume_metrics.volume_metrics`.
    """
    per_slice = [slice_metrics(r, e, tolerance) for r, e in zip(references, estimates)]
    scores: dict[str, np.ndarray] = {
        name: subject_means([m[name] for m in per_slice], subjects) for name in METRIC_NAMES
    }
    volumes = per_subject(references, estimates, list(subjects))
    for name in VOLUME_METRIC_NAMES:
        scores[name] = np.array([v[name] for v in volumes.values()])
    scores["subjects"] = np.array(list(volumes))
    return scores


def with_uncertainty(
    metrics: dict[str, float], scores: dict[str, np.ndarray], seed: int = 0, resamples: int = RESAMPLES
) -> dict[str, float]:
    """``metrics`` plus the volume-convention means and a 95% bootstrap interval of each of :data:`CI_METRICS`
    (keys :data:`UNCERTAINTY_KEYS`), from :func:`subject_scores` of the same reconstructions. The per-slice
    means in ``metrics`` are kept as they are (the point estimate of today's convention)."""
    out = dict(metrics)
    for name in VOLUME_METRIC_NAMES:
        out[name] = float(np.mean(scores[name]))
    for name in CI_METRICS:
        ci = mean_ci(scores[name], seed, resamples=resamples)
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = ci["ci_low"], ci["ci_high"]
    return out


def paired_differences(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], seed: int = 0, resamples: int = RESAMPLES
) -> dict[str, float]:
    """Mean paired difference ``a - b`` over the same test subjects, with its 95% bootstrap interval, for
    each of :data:`DIFFERENCE_METRICS`: ``{metric, metric_ci_low, metric_ci_high}``.

    Raises:
        ValueError: if the two were scored on different subjects.
    """
    if list(a["subjects"]) != list(b["subjects"]):
        raise ValueError("paired differences need both methods scored on the same test subjects")
    out: dict[str, float] = {}
    for name in DIFFERENCE_METRICS:
        ci = paired_difference_ci(a[name], b[name], seed, resamples=resamples)
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = ci["mean"], ci["ci_low"], ci["ci_high"]
    return out
