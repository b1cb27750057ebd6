"""Synthetic lesions inserted into test images before k-space is simulated (lesion-insertion checks).

A network trained on a few hundred brains may erase a small lesion or paint in one; global metrics (PSNR,
SSIM) do not show it. Following the lesion-insertion studies of Cheng et al. 2020 ("Addressing the false
negative problem of deep learning MRI reconstruction models by adversarial attacks and robust training",
MIDL 2020) and Bhadra et al. 2021 ("On hallucinations in tomographic image reconstruction", IEEE TMI 40(11)),
small smooth-edged discs are added to the fully sampled magnitude image ``x``; the lesion-inserted image then
goes through the same forward model (:func:`mrirecon.mri.forward.measure`: the same mask, synthetic phase and
noise, all keyed by subject and slice) as its lesion-free twin ``x``, so the difference of the two
reconstructions isolates what a method does with the lesion.

* **Brain mask** (:func:`brain_mask`): pixels above ``threshold`` x the slice maximum, closed with a 2-pixel
  disc, holes filled, largest connected component (scikit-image morphology).
* **Lesion** (:func:`lesion_profile`): a disc of diameter ``d`` pixels with a raised-cosine edge of width
  ``edge_px`` (profile 1 inside ``r <= d/2 - edge/2``, 0 outside ``r >= d/2 + edge/2``); centres on pixel
  centres, so a 1-pixel lesion is exactly one pixel. Its *core* is where the profile is at least 0.5.
* **Contrast** relative to the surrounding tissue: the added amplitude is ``contrast x`` the mean of ``x`` within
  ``d/2 + edge/2 + 2`` pixels of the centre (bright lesions ``contrast > 0``, dark ones ``< 0``).
* **Placement**: centres drawn uniformly from the brain mask eroded by ``margin_px`` plus the lesion's outer
  radius plus its background ring (``ring_px``), so lesion and ring lie inside the brain, ``margin_px`` from its
  edge; lesions (with their rings) do not overlap. Each slice draws from a private generator keyed by
  ``(seed, "lesions", subject, slice index)`` (:func:`mrirecon.seeding.rng_for`), so adding subjects or slices
  does not change the lesions of the others. A slice gets a seeded random choice of ``per_slice`` of the
  ``diameters x contrasts`` combinations; a lesion that finds no room after many tries is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product

import numpy as np
from scipy.ndimage import binary_fill_holes
from skimage.measure import label
from skimage.morphology import closing, disk, erosion

from mrirecon.data.slice_set import SliceSet
from mrirecon.seeding import rng_for

#: Tries per lesion to find a free centre before it is left out.
PLACEMENT_TRIES = 500


@dataclass(frozen=True)
class Lesion:
    """One inserted lesion.

    Attributes:
        slice: position of its slice in the slice set.
        row, col: centre (pixel indices).
        diameter_px: diameter (pixels; x pixel size in mm, e.g. 2 mm for IXI).
        contrast: amplitude relative to the local tissue mean (signed: > 0 bright, < 0 dark).
        amplitude: added intensity at the centre, in the units of the normalised image (``contrast x`` background).
        edge_px: width of the raised-cosine edge (pixels).
        ring_px: width of the background ring around the lesion (pixels; see :func:`lesion_ring`).
    """

    slice: int
    row: int
    col: int
    diameter_px: float
    contrast: float
    amplitude: float
    edge_px: float
    ring_px: float

    @property
    def outer_radius(self) -> float:
        """Radius (pixels) beyond which the profile is 0."""
        return self.diameter_px / 2 + self.edge_px / 2

    def distance(self, shape: tuple[int, int]) -> np.ndarray:
        """Distance (pixels) of every pixel of an image of ``shape`` to the centre, float64 ``(H, W)``."""
        rows, cols = np.ogrid[: shape[0], : shape[1]]
        return np.hypot(rows - self.row, cols - self.col)

    def profile(self, shape: tuple[int, int]) -> np.ndarray:
        """The lesion's profile in [0, 1], float64 ``(H, W)`` (:func:`lesion_profile`)."""
        return lesion_profile(self.distance(shape), self.diameter_px, self.edge_px)

    def core(self, shape: tuple[int, int]) -> np.ndarray:
        """Bool ``(H, W)``: where the profile is at least 0.5 (at least the centre pixel)."""
        return self.profile(shape) >= 0.5

    def ring(self, shape: tuple[int, int]) -> np.ndarray:
        """Bool ``(H, W)``: the background ring, ``outer_radius + 1 < r <= outer_radius + 1 + ring_px``."""
        r = self.distance(shape)
        inner = self.outer_radius + 1
        return (r > inner) & (r <= inner + self.ring_px)


def lesion_profile(distance: np.ndarray, diameter_px: float, edge_px: float) -> np.ndarray:
    """Smooth-edged disc: 1 for ``r <= d/2 - e/2``, 0 for ``r >= d/2 + e/2``, ``(1 + cos(pi t)) / 2`` between,
    ``t = (r - d/2 + e/2) / e`` (a raised-cosine edge; ``e = 0`` gives a hard disc ``r <= d/2``).

    Args:
        distance: float ``(H, W)`` distance to the centre (pixels).
        diameter_px: diameter ``d`` (pixels, > 0).
        edge_px: edge width ``e`` (pixels, >= 0).

    Returns:
        float64 ``(H, W)`` in [0, 1].
    """
    radius = diameter_px / 2
    if edge_px <= 0:
        return (distance <= radius).astype(np.float64)
    t = np.clip((distance - radius + edge_px / 2) / edge_px, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def brain_mask(image: np.ndarray, threshold: float) -> np.ndarray:
    """Brain (head) mask of a normalised magnitude slice.

    Pixels above ``threshold x max(image)``, closed with a disc of radius 2 (scikit-image), holes filled
    (:func:`scipy.ndimage.binary_fill_holes`), largest connected component kept. On IXI T1 (not skull-stripped)
    this is the head; :func:`insert_lesions` keeps lesions ``margin_px`` inside it, past scalp and skull.

    Args:
        image: float ``(H, W)`` magnitude.
        threshold: fraction of the slice maximum, in (0, 1).

    Returns:
        bool ``(H, W)`` (all False for an empty slice).
    """
    peak = float(np.max(image))
    if peak <= 0:
        return np.zeros(image.shape, dtype=bool)
    mask = closing(image > threshold * peak, disk(2))
    mask = binary_fill_holes(mask)
    labels = label(mask)
    if labels.max() == 0:
        return mask
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return labels == largest


def _place(
    region: np.ndarray, reach: list[float], margin_px: float, rng: np.random.Generator
) -> list[tuple[int, int] | None]:
    """Centres for discs reaching ``reach`` pixels (outer radius + ring), each inside ``region`` eroded by its reach
    plus ``margin_px``, the discs not overlapping; None where none was found in :data:`PLACEMENT_TRIES` draws."""
    placed: list[tuple[int, int, float]] = []
    out: list[tuple[int, int] | None] = []
    for radius in reach:
        allowed = np.argwhere(erosion(region, disk(int(np.ceil(radius + margin_px)))))
        centre = None
        if len(allowed):
            for _ in range(PLACEMENT_TRIES):
                r, c = allowed[rng.integers(len(allowed))]
                if all(np.hypot(r - pr, c - pc) > radius + pradius for pr, pc, pradius in placed):
                    centre = (int(r), int(c))
                    placed.append((centre[0], centre[1], radius))
                    break
        out.append(centre)
    return out


@dataclass
class LesionSet:
    """Slices with inserted lesions and what was inserted.

    Attributes:
        data: the slices with lesions (images changed; masks, subjects, slice indices those of the twin).
        lesions: every inserted lesion (``Lesion.slice`` indexes ``data``).
        brain: bool ``(N, H, W)`` brain masks of the lesion-free slices (:func:`brain_mask`).
        delta: float64 ``(N, H, W)``: lesion-inserted minus lesion-free image (the true lesion image).
    """

    data: SliceSet
    lesions: list[Lesion]
    brain: np.ndarray
    delta: np.ndarray


def insert_lesions(
    data: SliceSet,
    diameters_px: list[float],
    contrasts: list[float],
    per_slice: int,
    edge_px: float,
    ring_px: float,
    brain_threshold: float,
    margin_px: float,
    seed: int,
) -> LesionSet:
    """Insert ``per_slice`` seeded synthetic lesions into every slice of ``data`` (see module docstring).

    Args:
        data: lesion-free slices (the twins); images float ``(N, H, W)``.
        diameters_px: lesion diameters (pixels, > 0).
        contrasts: amplitudes relative to the local tissue mean (signed, > -1).
        per_slice: lesions per slice (>= 1; combinations of diameter and contrast repeat if more are asked for).
        edge_px: raised-cosine edge width (pixels).
        ring_px: width of the background ring kept free around each lesion (pixels).
        brain_threshold: brain mask threshold, fraction of the slice maximum.
        margin_px: distance kept between a lesion's ring and the brain edge (pixels).
        seed: lesion seed (``params.yaml: evaluate.lesions.seed``).

    Returns:
        :class:`LesionSet`; the images are float32 like ``data.images``.

    Raises:
        ValueError: on an empty diameter or contrast list, a diameter <= 0, a contrast <= -1 or ``per_slice < 1``.
    """
    if not diameters_px or not contrasts or per_slice < 1:
        raise ValueError("lesions: need at least one diameter, one contrast and per_slice >= 1")
    if min(diameters_px) <= 0 or min(contrasts) <= -1:
        raise ValueError(f"lesions: diameters must be > 0 and contrasts > -1, got {diameters_px}, {contrasts}")
    combos = list(product(diameters_px, contrasts))
    shape = data.images.shape[1:]
    images = data.images.astype(np.float64)
    delta = np.zeros_like(images)
    brains = np.zeros(images.shape, dtype=bool)
    lesions: list[Lesion] = []
    for i in range(len(data)):
        rng = rng_for(seed, "lesions", data.subjects[i], int(data.slice_index[i]))
        brains[i] = brain_mask(images[i], brain_threshold)
        order = rng.permutation(len(combos))
        chosen = [combos[order[j % len(combos)]] for j in range(per_slice)]
        reach = [d / 2 + edge_px / 2 + 1 + ring_px for d, _ in chosen]
        for (diameter, contrast), centre in zip(chosen, _place(brains[i], reach, margin_px, rng)):
            if centre is None:
                continue
            probe = Lesion(i, *centre, float(diameter), float(contrast), 0.0, float(edge_px), float(ring_px))
            background = float(images[i][probe.distance(shape) <= probe.outer_radius + 2].mean())
            lesion = replace(probe, amplitude=float(contrast) * background)
            delta[i] += lesion.amplitude * lesion.profile(shape)
            lesions.append(lesion)
    inserted = (images + delta).astype(data.images.dtype)
    return LesionSet(replace(data, images=inserted), lesions, brains, inserted.astype(np.float64) - images)
