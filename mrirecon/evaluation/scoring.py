"""Scoring on test subjects: the zero-filled and compressed-sensing baselines, and one trained grid point.

Plain functions, free of Prefect and MLflow. Every metric is :func:`mrirecon.mri.metrics.mean_metrics`
of the fully sampled test magnitudes against a magnitude estimate (per slice, then mean). The CS weight
is chosen on validation slices, never on test slices; a grid point is scored on the test slices, on the
same slices with k-space noise, and on its training slices (the train-test gap).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mrirecon.config import EvaluateParams
from mrirecon.data.slice_set import SliceSet
from mrirecon.evaluation.lesions import LesionCheck, lesion_set, score_lesions, shown_position
from mrirecon.evaluation.report import PointResult, diagnostics, figure_indices
from mrirecon.evaluation.uncertainty import subject_scores, with_uncertainty
from mrirecon.mri.cs import choose_lambda, cs_reconstruct_batch
from mrirecon.mri.forward import measure, zero_filled_magnitude
from mrirecon.mri.lesions import LesionSet
from mrirecon.mri.metrics import mean_metrics
from mrirecon.mri.phase import effective_acceleration

if TYPE_CHECKING:  # imports Keras, which only reconstruct_point needs
    from mrirecon.models.checkpoint import ModelSpec


def evenly_spaced(data: SliceSet, count: int) -> SliceSet:
    """``count`` evenly spaced slices of a set (all if fewer), in their order (:func:`figure_indices`)."""
    keep = figure_indices(len(data), count)
    return replace(
        data,
        images=data.images[keep],
        masks=data.masks[keep],
        subjects=[data.subjects[i] for i in keep],
        slice_index=data.slice_index[keep],
    )


def gap_slices(train: SliceSet, evaluate: EvaluateParams) -> SliceSet:
    """The training slices the train-test gap is measured on: ``evaluate.gap_slices`` evenly spaced ones
    (all with null), so scoring a large grid does not reconstruct the whole training split per point."""
    return train if evaluate.gap_slices is None else evenly_spaced(train, evaluate.gap_slices)


@dataclass
class Baselines:
    """Zero-filled and compressed-sensing baselines of one intensity on the test slices.

    Attributes:
        conditions: ``{"magnitude" | "synthetic_phase": {"zero_filled": metrics, "cs": metrics + "lambda" | None,
            "images": {"zero_filled": (K, H, W), "cs": (K, H, W)}, "scores": {"zero_filled", "cs"}}}``;
            metrics carry volume-convention means and 95% CIs (:func:`~.uncertainty.with_uncertainty`),
            ``scores`` the per-subject values behind them (for paired differences); ``images`` hold the K figure slices
            (:func:`figure_indices`), float32 magnitudes. ``synthetic_phase`` only with
            ``evaluate.synthetic_phase_baselines``.
        effective: ``{"nominal", "achieved", "hermitian"}``: nominal acceleration and the mean over the test
            masks of ``W / lines known``, without and with Hermitian-mirrored lines (dimensionless).
        cs_lambda: CS weight chosen on validation slices (None without the CS baseline).
        cs_scores: ``{lambda: mean validation PSNR in dB}`` of every candidate weight.
        cs_val_slices: number of validation slices the weight was chosen on.
    """

    conditions: dict[str, dict]
    effective: dict[str, float]
    cs_lambda: float | None = None
    cs_scores: dict[float, float] = field(default_factory=dict)
    cs_val_slices: int = 0

    @property
    def lesions(self) -> LesionCheck | None:
        """The lesion check of the baselines (k-space without synthetic phase), None when off."""
        return self.conditions["magnitude"].get("lesions")

    def condition(self, synthetic_phase: bool) -> dict:
        """The block a grid point is compared with: ``synthetic_phase`` if it was trained with synthetic phase
        and that baseline was scored, else ``magnitude``."""
        return self.conditions.get("synthetic_phase" if synthetic_phase else "magnitude", self.conditions["magnitude"])


def choose_cs_lambda(val: SliceSet, evaluate: EvaluateParams) -> tuple[float, dict[float, float], int]:
    """The CS weight with the best mean magnitude PSNR on ``evaluate.cs_val_slices`` evenly spaced validation
    slices (k-space without synthetic phase), see :func:`mrirecon.mri.cs.choose_lambda`.

    Returns:
        ``(lambda, {candidate: mean PSNR in dB}, slices used)``.
    """
    subset = evenly_spaced(val, evaluate.cs_val_slices)
    lam, scores = choose_lambda(
        subset.images,
        subset.masks,
        tuple(evaluate.cs_lambdas),
        evaluate.tolerance,
        evaluate.cs_iterations,
        wavelet=evaluate.cs_wavelet,
        cycle_spin=evaluate.cs_cycle_spin,
    )
    return lam, scores, len(subset)


def baseline_condition(
    test: SliceSet, synthetic_phase: bool, phase_seed: int, evaluate: EvaluateParams, cs_lambda: float | None
) -> dict:
    """Zero-filled (and, with ``cs_lambda``, CS) reconstructions of the test slices scored against their
    magnitudes; k-space simulated with or without synthetic phase (:func:`mrirecon.mri.forward.measure`).

    Returns:
        one block of :attr:`Baselines.conditions`.
    """
    shown = figure_indices(len(test), evaluate.figure_slices)
    measured, _ = measure(test, synthetic_phase, phase_seed)
    zf = zero_filled_magnitude(measured)
    zf_scores = subject_scores(test.images, zf, test.subjects, evaluate.tolerance)
    block: dict = {
        "zero_filled": _with_ci(mean_metrics(test.images, zf, evaluate.tolerance), zf_scores, evaluate),
        "cs": None,
        "images": {"zero_filled": zf[shown]},
        "scores": {"zero_filled": zf_scores, "cs": None},
    }
    if cs_lambda is not None:
        cs = np.abs(
            cs_reconstruct_batch(
                measured,
                test.masks,
                cs_lambda,
                evaluate.cs_iterations,
                wavelet=evaluate.cs_wavelet,
                cycle_spin=evaluate.cs_cycle_spin,
            )
        )
        cs = cs.astype(np.float32)
        cs_scores = subject_scores(test.images, cs, test.subjects, evaluate.tolerance)
        cs_metrics = _with_ci(mean_metrics(test.images, cs, evaluate.tolerance), cs_scores, evaluate)
        block["cs"] = {**cs_metrics, "lambda": cs_lambda}
        block["scores"]["cs"] = cs_scores
        block["images"]["cs"] = cs[shown]
    if not synthetic_phase and evaluate.lesions.enabled:
        block["lesions"] = lesion_baselines(test, zf, cs if cs_lambda is not None else None, evaluate, cs_lambda)
    return block


def lesion_baselines(
    test: SliceSet, zero_filled: np.ndarray, cs: np.ndarray | None, evaluate: EvaluateParams, cs_lambda: float | None
) -> LesionCheck:
    """Lesion and hallucination scores of the zero-filled and CS baselines (:mod:`mrirecon.evaluation.lesions`).

    The lesion-inserted slices (:func:`mrirecon.evaluation.lesions.lesion_set`) are measured without synthetic phase
    and noise, like their twins, and reconstructed the same way; the twins' reconstructions are taken from
    ``zero_filled`` and ``cs`` (the test set's, float ``(N, H, W)``), so CS runs only on the lesion-inserted slices.
    """
    keep, lesions = lesion_set(test, evaluate.lesions)
    measured, _ = measure(lesions.data)
    methods = {"zero_filled": (zero_filled_magnitude(measured), zero_filled[keep])}
    if cs is not None and cs_lambda is not None:
        with_cs = cs_reconstruct_batch(
            measured,
            lesions.data.masks,
            cs_lambda,
            evaluate.cs_iterations,
            wavelet=evaluate.cs_wavelet,
            cycle_spin=evaluate.cs_cycle_spin,
        )
        methods["cs"] = (np.abs(with_cs).astype(np.float32), cs[keep])
    reference = test.images[keep]
    scores: dict[str, dict | None] = {"zero_filled": None, "cs": None}
    shown: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    check = LesionCheck(lesions, keep, scores, shown)
    for name, (with_lesions, without) in methods.items():
        scores[name] = score_lesions(lesions, reference, with_lesions, without, evaluate.lesions)
        shown[name] = (with_lesions[check.shown_slice], without[check.shown_slice])
    return check


def _with_ci(metrics: dict[str, float], scores: dict[str, np.ndarray], evaluate: EvaluateParams) -> dict[str, float]:
    return with_uncertainty(metrics, scores, evaluate.ci_seed, evaluate.ci_resamples)


def effective_accelerations(test: SliceSet) -> dict[str, float]:
    """Nominal acceleration and the mean achieved one of the test masks, without and with the lines known
    through Hermitian symmetry (:func:`mrirecon.mri.phase.effective_acceleration`)."""
    return {
        "nominal": float(test.acceleration),
        "achieved": float(np.mean(effective_acceleration(test.masks, hermitian=False))),
        "hermitian": float(np.mean(effective_acceleration(test.masks, hermitian=True))),
    }


def score_baselines(test: SliceSet, val: SliceSet | None, evaluate: EvaluateParams, phase_seed: int) -> Baselines:
    """Zero-filled and CS baselines on the test slices, with and without synthetic phase.

    The CS weight is chosen on (a subset of) the validation slices without phase and reused with phase;
    no CS baseline without ``evaluate.cs`` or without ``val``.

    Args:
        test: test slices of one intensity.
        val: validation slices of the same intensity (for the CS weight), or None.
        evaluate: ``params.yaml: evaluate``.
        phase_seed: seed of the synthetic phase (the training seed, so networks and baselines see the same phase).
    """
    lam, scores, n_val = choose_cs_lambda(val, evaluate) if evaluate.cs and val is not None else (None, {}, 0)
    conditions = {"magnitude": baseline_condition(test, False, phase_seed, evaluate, lam)}
    if evaluate.synthetic_phase_baselines:
        conditions["synthetic_phase"] = baseline_condition(test, True, phase_seed, evaluate, lam)
    return Baselines(conditions, effective_accelerations(test), lam, scores, n_val)


@dataclass
class Reconstructions:
    """Magnitude reconstructions of one grid point, float32 ``(N, H, W)`` each, in the order of the slice sets."""

    test: np.ndarray
    noisy_test: np.ndarray
    train: np.ndarray | None = None
    #: reconstructions of the lesion-inserted test slices (:func:`mrirecon.evaluation.lesions.lesion_set`)
    lesions: np.ndarray | None = None


def reconstruct_point(
    model_dir: Path, test: SliceSet, train: SliceSet | None, noise_fraction: float, lesions: SliceSet | None = None
) -> tuple[ModelSpec, Reconstructions]:
    """Load a trained grid point (``spec.json`` + weights, :mod:`mrirecon.models.checkpoint`) and reconstruct the
    test slices, the test slices with complex Gaussian k-space noise (std ``noise_fraction`` x k-space RMS),
    the training slices and (given) the lesion-inserted test slices, simulating k-space as the point was trained
    (with or without synthetic phase, keyed by subject and slice, so a lesion slice gets its twin's phase).

    Returns:
        ``(the point's spec, reconstructions)``.
    """
    import keras

    from mrirecon.models.checkpoint import load_trained_model
    from mrirecon.models.training import reconstruct

    model, spec = load_trained_model(model_dir)
    point = spec.point

    def run(data: SliceSet, noise: float = 0.0) -> np.ndarray:
        return reconstruct(
            model,
            point.model,
            data,
            settings=spec.settings,
            synthetic_phase=point.synthetic_phase,
            noise_fraction=noise,
        )

    recon = Reconstructions(
        run(test),
        run(test, noise_fraction),
        run(train) if train is not None else None,
        run(lesions) if lesions is not None else None,
    )
    keras.backend.clear_session()
    return spec, recon


def score_point(
    entry: dict,
    params: dict,
    test: SliceSet,
    train: SliceSet | None,
    recon: Reconstructions,
    evaluate: EvaluateParams,
    lesions: tuple[list[int], LesionSet] | None = None,
) -> PointResult:
    """Test metrics of one grid point and, given its training slices, its diagnostics
    (:func:`mrirecon.evaluation.report.diagnostics`: train-test gap, PSNR with k-space noise), and given the
    lesion-inserted slices (and ``recon.lesions``) its lesion scores (:func:`mrirecon.evaluation.lesions.score_lesions`,
    the twins' reconstructions taken from ``recon.test``).

    Args:
        entry: the point's entry in ``models/train.json`` (``name``, ``run_id``, ``val_mse``, ``wall_time_s``).
        params: the grid point's parameters (``spec.json: point``).
        test, train: the slices that ``recon`` reconstructs (``train`` None: no diagnostics).
        recon: the point's reconstructions (:func:`reconstruct_point`).
        evaluate: ``params.yaml: evaluate`` (tolerance, overfit threshold, lesions).
        lesions: ``(positions of the twins in test, lesion-inserted slices)`` (:func:`~.lesions.lesion_set`).
    """
    scores = subject_scores(test.images, recon.test, test.subjects, evaluate.tolerance)
    metrics = _with_ci(mean_metrics(test.images, recon.test, evaluate.tolerance), scores, evaluate)
    result = PointResult(
        entry["name"],
        entry["run_id"],
        params,
        entry["val_mse"],
        test.acceleration,
        metrics,
        entry.get("wall_time_s", float("nan")),
    )
    result.scores = scores
    if train is not None and recon.train is not None:
        result.diagnostics = diagnostics(
            mean_metrics(train.images, recon.train, evaluate.tolerance),
            metrics,
            mean_metrics(test.images, recon.noisy_test, evaluate.tolerance),
            evaluate.overfit_gap_db,
        )
    if lesions is not None and recon.lesions is not None:
        keep, inserted = lesions
        without = recon.test[keep]
        result.lesions = score_lesions(inserted, test.images[keep], recon.lesions, without, evaluate.lesions)
        shown = shown_position(len(keep))
        result.lesion_shown = (recon.lesions[shown], without[shown])
    return result


def evaluate_point(
    model_dir: Path, entry: dict, test: SliceSet, train: SliceSet | None, evaluate: EvaluateParams
) -> tuple[PointResult, np.ndarray]:
    """Reconstruct the test slices with one trained grid point, score them, and diagnose it.

    Returns:
        ``(PointResult, reconstructions of the figure slices (K, H, W))``.
    """
    lesions = lesion_set(test, evaluate.lesions) if evaluate.lesions.enabled else None
    spec, recon = reconstruct_point(
        model_dir, test, train, evaluate.noise_fraction, lesions[1].data if lesions is not None else None
    )
    result = score_point(entry, spec.point.as_params(), test, train, recon, evaluate, lesions)
    return result, recon.test[figure_indices(len(test), evaluate.figure_slices)]
