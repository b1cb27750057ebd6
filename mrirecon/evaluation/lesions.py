"""Lesion and hallucination scores of one reconstruction method (zero-filled, CS, a grid point).

The lesions are those of :mod:`mrirecon.mri.lesions`, inserted into ``evaluate.lesions.slices`` evenly spaced
test slices; every method reconstructs the lesion-inserted slices and their lesion-free twins from k-space
measured with the same masks and phase, and ``D = recon(with) - recon(without)`` is what the method made of the
lesions (Cheng et al. 2020, MIDL; Bhadra et al. 2021, IEEE TMI 40(11)).

Per lesion (``core``: profile >= 0.5; ``ring``: the background ring around it, inside the brain):

* **contrast recovery** ``CR = mean_core(D) / mean_core(delta)``, ``delta`` the inserted lesion image: 1 = kept at
  full contrast, 0 = erased, < 0 = inverted. Exactly 1 for fully sampled k-space.
* **detectability** (Rose model / non-prewhitening matched filter on a flat disc; Rose 1948, J Opt Soc Am 38(2);
  Burgess 1999, JOSA A 16(3)): ``d' = sign(contrast) mean_core(D) sqrt(n_core) / sigma``, ``sigma`` the standard
  deviation of the lesion-free reconstruction's error (``recon(without) - reference``) on the ring, i.e. the
  clutter the lesion has to be seen against. Clipped to +-:data:`DETECTABILITY_CAP` (``sigma = 0``: no error at
  all; then an erased lesion scores 0).
* **missed**: ``d' < evaluate.lesions.detect_threshold`` (Rose's criterion: 3-5; default 3).

Per method: mean CR (also per diameter, bright and dark), median ``d'``, share missed, and the **smallest reliably
detected diameter**: the smallest diameter from which on every diameter has at least
``evaluate.lesions.reliable_fraction`` of its lesions detected (None if even the largest has not).

Hallucination (structure the reconstruction adds), per slice, then mean:

* **spill** ``= ||D||^2 outside the lesions / ||delta||^2``: lesion energy the method moves elsewhere in the image
  (aliasing, or structure a network invents in response to the lesion); "outside" = beyond every lesion's ring.
* **false edges** (a practical proxy of Bhadra et al.'s hallucination map): pixels of the lesion-free
  reconstruction inside the brain whose Sobel gradient magnitude is at least ``evaluate.lesions.edge_threshold``
  x the reference's maximum gradient but more than one pixel away from every such edge of the reference, as a
  fraction of the reference's edge pixels. 0 for a perfect reconstruction; ghosts and invented texture raise it,
  blurring (lost edges) does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from skimage.filters import sobel
from skimage.morphology import dilation, disk

from mrirecon.config import LesionParams
from mrirecon.data.slice_set import SliceSet
from mrirecon.mri.lesions import Lesion, LesionSet, insert_lesions

#: Detectability reported for a lesion seen without any error around it (``sigma = 0``).
DETECTABILITY_CAP = 100.0
#: Flat lesion numbers per method (MLflow metrics of a child run, ``grid.csv`` columns with prefix ``lesion_``).
SUMMARY_KEYS = ("contrast_recovery", "detectability", "missed", "smallest_detected_px", "spill", "false_edges")


@dataclass
class LesionCheck:
    """The lesion-inserted test slices of one intensity and what the baselines made of them.

    Attributes:
        lesions: the lesion-inserted slices (:func:`lesion_set`).
        indices: their positions in the test set (the lesion-free twins).
        scores: ``{"zero_filled" | "cs": summary (:func:`summarise`) or None}``.
        shown: ``{"zero_filled" | "cs": (with lesions, without), float32 (H, W) each}`` of the figure's slice
            (:attr:`shown_slice`, a position in ``lesions``).
    """

    lesions: LesionSet
    indices: list[int]
    scores: dict[str, dict | None]
    shown: dict[str, tuple[np.ndarray, np.ndarray]]

    @property
    def shown_slice(self) -> int:
        """Position in :attr:`lesions` of the slice drawn in the lesion figure (:func:`shown_position`)."""
        return shown_position(len(self.indices))


def shown_position(count: int) -> int:
    """Position, among ``count`` lesion-inserted slices, of the one drawn in the lesion figure: the middle one."""
    return count // 2


def evenly_spaced_indices(n: int, count: int | None) -> list[int]:
    """``count`` evenly spaced positions of ``n`` (all with None or when fewer), sorted."""
    if count is None or count >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, count)})


def lesion_set(test: SliceSet, params: LesionParams) -> tuple[list[int], LesionSet]:
    """The lesion-inserted copies of ``params.slices`` evenly spaced test slices
    (:func:`mrirecon.mri.lesions.insert_lesions` with ``params.yaml: evaluate.lesions``).

    Returns:
        ``(positions of the twins in test, LesionSet)``.
    """
    keep = evenly_spaced_indices(len(test), params.slices)
    twins = replace(
        test,
        images=test.images[keep],
        masks=test.masks[keep],
        subjects=[test.subjects[i] for i in keep],
        slice_index=test.slice_index[keep],
    )
    lesions = insert_lesions(
        twins,
        params.diameters_px,
        params.contrasts,
        params.per_slice,
        params.edge_px,
        params.ring_px,
        params.brain_threshold,
        params.margin_px,
        params.seed,
    )
    return keep, lesions


def lesion_table(
    lesions: LesionSet, reference: np.ndarray, with_lesions: np.ndarray, without: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-lesion scores.

    Args:
        lesions: the inserted lesions (:func:`mrirecon.mri.lesions.insert_lesions`).
        reference: float ``(N, H, W)`` lesion-free fully sampled magnitudes (the twins).
        with_lesions, without: float ``(N, H, W)`` reconstructions of the lesion-inserted slices and of the twins.

    Returns:
        ``{"diameter_px", "contrast", "contrast_recovery", "detectability"}``, float64 arrays with one value per
        lesion (see module docstring).
    """
    shape = reference.shape[1:]
    difference = with_lesions.astype(np.float64) - without
    error = without.astype(np.float64) - reference
    rows = []
    for lesion in lesions.lesions:
        core = lesion.core(shape)
        ring = lesion.ring(shape) & lesions.brain[lesion.slice]
        true = float(lesions.delta[lesion.slice][core].mean())
        kept = float(difference[lesion.slice][core].mean())
        sigma = float(error[lesion.slice][ring].std()) if ring.any() else 0.0
        signal = np.sign(lesion.contrast) * kept * np.sqrt(core.sum())
        detect = float(np.clip(signal / sigma, -DETECTABILITY_CAP, DETECTABILITY_CAP)) if sigma > 0 else 0.0
        if sigma == 0 and signal != 0:  # no error around the lesion: seen (or inverted) for certain
            detect = float(np.sign(signal) * DETECTABILITY_CAP)
        rows.append((lesion.diameter_px, lesion.contrast, kept / true, detect))
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    keys = ("diameter_px", "contrast", "contrast_recovery", "detectability")
    return {key: table[:, k] for k, key in enumerate(keys)}


def _outside(lesions: Sequence[Lesion], shape: tuple[int, int]) -> np.ndarray:
    """Bool ``(H, W)``: beyond every lesion's ring."""
    inside = np.zeros(shape, dtype=bool)
    for lesion in lesions:
        inside |= lesion.distance(shape) <= lesion.outer_radius + 1 + lesion.ring_px
    return ~inside


def spill(lesions: LesionSet, with_lesions: np.ndarray, without: np.ndarray) -> float:
    """Mean over slices with lesions of ``||D||^2 outside the lesions and their rings / ||delta||^2`` (see module
    docstring); dimensionless, 0 for fully sampled k-space."""
    shape = with_lesions.shape[1:]
    values = []
    for i in sorted({lesion.slice for lesion in lesions.lesions}):
        mine = [lesion for lesion in lesions.lesions if lesion.slice == i]
        d = with_lesions[i].astype(np.float64) - without[i]
        values.append(float(np.sum(d[_outside(mine, shape)] ** 2) / np.sum(lesions.delta[i] ** 2)))
    return float(np.mean(values)) if values else float("nan")


def false_edges(reference: np.ndarray, recon: np.ndarray, brain: np.ndarray, edge_threshold: float) -> float:
    """Mean over slices of the false-edge fraction (see module docstring).

    Args:
        reference, recon: float ``(N, H, W)`` lesion-free reference and reconstruction.
        brain: bool ``(N, H, W)`` brain masks.
        edge_threshold: edge = Sobel magnitude >= this fraction of the reference's maximum (per slice).

    Returns:
        dimensionless, >= 0 (may exceed 1 when the reconstruction adds more edges than the reference has).
    """
    values = []
    for ref, rec, mask in zip(reference, recon, brain):
        ref_grad, rec_grad = sobel(ref.astype(np.float64)), sobel(rec.astype(np.float64))
        level = edge_threshold * float(ref_grad.max())
        ref_edges = (ref_grad >= level) & mask
        added = (rec_grad >= level) & mask & ~dilation(ref_edges, disk(1))
        values.append(added.sum() / max(int(ref_edges.sum()), 1))
    return float(np.mean(values)) if values else float("nan")


def smallest_detected(diameters: np.ndarray, detected: np.ndarray, reliable_fraction: float) -> float | None:
    """Smallest diameter ``d`` such that every diameter ``>= d`` has at least ``reliable_fraction`` of its lesions
    detected; None if the largest has not."""
    smallest = None
    for d in sorted(set(diameters.tolist()), reverse=True):
        if detected[diameters == d].mean() < reliable_fraction:
            break
        smallest = float(d)
    return smallest


def summarise(
    table: dict[str, np.ndarray], spill_value: float, false_edge_value: float, settings: LesionParams
) -> dict:
    """A method's ``lesions`` entry of ``metrics.json``.

    Returns:
        ``{"lesions" (count), "contrast_recovery", "contrast_recovery_bright", "contrast_recovery_dark",
        "detectability" (median), "missed" (share), "smallest_detected_px" (or None), "spill", "false_edges",
        "by_diameter": {"<d>px": {"lesions", "contrast_recovery", "detectability", "missed"}}}``.
    """
    detected = table["detectability"] >= settings.detect_threshold
    cr = table["contrast_recovery"]

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if len(values) else None

    by_diameter = {}
    for d in sorted(set(table["diameter_px"].tolist())):
        mine = table["diameter_px"] == d
        by_diameter[f"{d:g}px"] = {
            "lesions": int(mine.sum()),
            "contrast_recovery": float(cr[mine].mean()),
            "detectability": float(np.median(table["detectability"][mine])),
            "missed": float(1 - detected[mine].mean()),
        }
    return {
        "lesions": len(cr),
        "contrast_recovery": mean(cr),
        "contrast_recovery_bright": mean(cr[table["contrast"] > 0]),
        "contrast_recovery_dark": mean(cr[table["contrast"] < 0]),
        "detectability": float(np.median(table["detectability"])) if len(cr) else None,
        "missed": float(1 - detected.mean()) if len(cr) else None,
        "smallest_detected_px": smallest_detected(table["diameter_px"], detected, settings.reliable_fraction),
        "spill": spill_value,
        "false_edges": false_edge_value,
        "by_diameter": by_diameter,
    }


def score_lesions(
    lesions: LesionSet, reference: np.ndarray, with_lesions: np.ndarray, without: np.ndarray, settings: LesionParams
) -> dict:
    """Every lesion and hallucination score of one method (:func:`summarise` of :func:`lesion_table`,
    :func:`spill`, :func:`false_edges`).

    Args:
        lesions: the inserted lesions.
        reference: float ``(N, H, W)`` lesion-free fully sampled magnitudes.
        with_lesions, without: the method's float ``(N, H, W)`` reconstructions with and without the lesions.
        settings: ``params.yaml: evaluate.lesions`` (the thresholds).
    """
    table = lesion_table(lesions, reference, with_lesions, without)
    edges = false_edges(reference, without, lesions.brain, settings.edge_threshold)
    return summarise(table, spill(lesions, with_lesions, without), edges, settings)


def flat_columns(summaries: Sequence[dict]) -> list[str]:
    """The :func:`flat_metrics` names of ``summaries`` in a fixed order (:data:`SUMMARY_KEYS`, then per diameter,
    smallest first); none when no summary has lesions."""
    if not any(summaries):
        return []
    sizes = sorted({d for s in summaries if s for d in s["by_diameter"]}, key=lambda d: float(d.removesuffix("px")))
    return [*(f"lesion_{k}" for k in SUMMARY_KEYS), *(f"lesion_cr_{d}" for d in sizes)]


def flat_metrics(summary: dict | None) -> dict[str, float]:
    """``{"lesion_<key>": value}`` of :data:`SUMMARY_KEYS` and ``lesion_cr_<d>px`` per diameter, numbers only
    (a None is left out): MLflow metrics of a child run and ``grid.csv`` columns."""
    if not summary:
        return {}
    out = {f"lesion_{k}": float(summary[k]) for k in SUMMARY_KEYS if summary.get(k) is not None}
    out.update({f"lesion_cr_{d}": float(v["contrast_recovery"]) for d, v in summary["by_diameter"].items()})
    return out
