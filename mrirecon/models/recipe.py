"""A trained network's recipe: the preprocessing and simulation its inputs must follow.

A network only means something on inputs made the way its training inputs were: the same slice
orientation, per-volume normalisation, in-plane pixel size and slice size, the same mask family
(type, acceleration, centre fraction), synthetic phase or not, and the same FFT convention. The
:class:`Recipe` records exactly that, is stored in each grid point's ``spec.json``
(:mod:`mrirecon.models.checkpoint`) and logged as MLflow params (``recipe.<field>``), so a model
taken away from the pipeline (``mrirecon reconstruct``, ``mrirecon evaluate --source``) is applied
as it was trained, whatever ``params.yaml`` says at that moment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from mrirecon.config import Params
from mrirecon.mri.subsample import Intensity

#: Slice orientation of every stored slice (:func:`mrirecon.data.slices.axial_image`).
ORIENTATION = (
    "volume reoriented to RAS (nibabel.as_closest_canonical); axial slices; rows anterior->posterior, "
    "columns left->right; phase-encode along columns (mask keeps whole k-space columns)"
)
#: k-space convention (:mod:`mrirecon.mri.fft`).
FFT_CONVENTION = "centred orthonormal 2D FFT: fftshift(fft2(ifftshift(x), norm='ortho'))"


class Recipe(BaseModel):
    """How a grid point's training inputs were made (see the module docstring).

    Attributes:
        intensity: name of the undersampling intensity (``masks.intensities`` key).
        acceleration: nominal acceleration R of the mask.
        center_fraction: fully sampled centre fraction of the mask.
        mask_type: ``random`` or ``equispaced`` (:func:`mrirecon.mri.subsample.cartesian_mask`).
        mask_seed: ``masks.seed``: masks of a slice are drawn from ``rng_for(mask_seed, subject, slice, intensity)``.
        synthetic_phase: whether k-space was simulated from the image with a smooth synthetic phase.
        phase_seed: seed of that phase (``train.seed``).
        percentile: per-volume normalisation: this intensity percentile maps to 1.0 (no clipping).
        size: square slice side in pixels after centre pad/crop.
        pixel_mm: in-plane pixel size ``(row_mm, col_mm)`` of the training slices in mm (the median over
            them when ``slices.pixel_mm`` is null, i.e. native).
        window_mm: axial slices were chosen around the widest head cross-section this far below the vertex (mm).
        orientation: :data:`ORIENTATION`.
        fft: :data:`FFT_CONVENTION`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    intensity: str
    acceleration: float = Field(gt=0)
    center_fraction: float = Field(gt=0, lt=1)
    mask_type: str
    mask_seed: int
    synthetic_phase: bool
    phase_seed: int
    percentile: float = Field(gt=0, le=100)
    size: int = Field(ge=8)
    pixel_mm: tuple[float, float]
    window_mm: tuple[float, float]
    orientation: str = ORIENTATION
    fft: str = FFT_CONVENTION

    def as_params(self) -> dict[str, str]:
        """Flat ``{"recipe.<field>": value}`` for MLflow params (values as strings)."""
        return {f"recipe.{key}": str(value) for key, value in self.model_dump().items()}


def training_pixel_mm(slices_path: str | Path) -> tuple[float, float]:
    """Median in-plane pixel size ``(row_mm, col_mm)`` of the *train* slices of ``slices.parquet``.

    Rows of a stored slice are the RAS volume's Y axis and columns its X axis
    (:func:`mrirecon.data.slices.axial_image`), so ``row_mm = voxel_mm[1]``, ``col_mm = voxel_mm[0]``.

    Raises:
        ValueError: if the file has no train slices.
    """
    table = pq.read_table(slices_path, columns=["split", "voxel_mm"]).to_pydict()
    voxels = [v for v, split in zip(table["voxel_mm"], table["split"]) if split == "train"]
    if not voxels:
        raise ValueError(f"{slices_path}: no train slices to take the pixel size from")
    median = np.median(np.asarray(voxels, dtype=np.float64), axis=0)
    return float(median[1]), float(median[0])


def recipe_for(params: Params, intensity: str, synthetic_phase: bool, pixel_mm: tuple[float, float]) -> Recipe:
    """The :class:`Recipe` of a grid point trained with ``params`` at ``intensity``.

    Args:
        params: the validated ``params.yaml`` the training ran with.
        intensity: a key of ``params.masks.intensities``.
        synthetic_phase: the grid point's ``synthetic_phase``.
        pixel_mm: ``(row_mm, col_mm)`` of the training slices (:func:`training_pixel_mm`).

    Raises:
        KeyError: if ``intensity`` is not in ``params.masks.intensities``.
    """
    level = params.masks.intensities[intensity]
    return Recipe(
        intensity=intensity,
        acceleration=level.acceleration,
        center_fraction=level.center_fraction,
        mask_type=params.masks.type,
        mask_seed=params.masks.seed,
        synthetic_phase=synthetic_phase,
        phase_seed=params.train.seed if params.train is not None else 0,
        percentile=params.slices.percentile,
        size=params.slices.size,
        pixel_mm=pixel_mm,
        window_mm=params.slices.window_mm,
    )


def recipe_differences(recipe: Recipe, params: Params) -> list[str]:
    """Where ``params`` would prepare inputs differently from ``recipe``, one ``"key: model X, params.yaml Y"``
    string per difference (empty when they agree). The pixel size is compared only when ``slices.pixel_mm``
    is set (null means native, which depends on the data)."""
    if recipe.intensity not in params.masks.intensities:
        return [f"masks.intensities: model intensity {recipe.intensity!r} not in params.yaml"]
    ours = recipe_for(params, recipe.intensity, recipe.synthetic_phase, recipe.pixel_mm)
    keys = {
        "acceleration": f"masks.intensities.{recipe.intensity}.acceleration",
        "center_fraction": f"masks.intensities.{recipe.intensity}.center_fraction",
        "mask_type": "masks.type",
        "mask_seed": "masks.seed",
        "phase_seed": "train.seed",
        "percentile": "slices.percentile",
        "size": "slices.size",
        "window_mm": "slices.window_mm",
    }
    out = [
        f"{key}: model {getattr(recipe, field)}, params.yaml {getattr(ours, field)}"
        for field, key in keys.items()
        if getattr(recipe, field) != getattr(ours, field)
    ]
    pixel = params.slices.pixel_mm
    if pixel is not None and not np.allclose(recipe.pixel_mm, (pixel, pixel), atol=1e-6):
        out.append(f"slices.pixel_mm: model {list(recipe.pixel_mm)}, params.yaml {pixel}")
    return out


def params_following(params: Params, recipes: list[Recipe]) -> Params:
    """``params`` with every setting a recipe fixes taken from ``recipes`` (the trained models'): ``slices``
    (``percentile``, ``size``, ``window_mm``, ``pixel_mm`` = the recipe's column pixel size: slices are resampled
    to square pixels), ``masks`` (``type``, ``seed``, and each recipe's intensity with its acceleration and centre
    fraction, added if params.yaml lacks it) and ``train.seed`` (the synthetic-phase seed). Used where data are
    prepared for trained models (``mrirecon evaluate --source``), so they see inputs made as in training
    whatever ``params.yaml`` says.

    Raises:
        ValueError: if ``recipes`` is empty or the recipes disagree on a shared setting (models of different
            trainings); the message names the setting.
    """
    if not recipes:
        raise ValueError("no recipe to follow")
    first = recipes[0]
    for field in ("percentile", "size", "window_mm", "pixel_mm", "mask_type", "mask_seed", "phase_seed", "fft"):
        values = sorted({str(getattr(r, field)) for r in recipes})
        if len(values) > 1:
            raise ValueError(f"the trained models' recipes disagree on {field}: {', '.join(values)}")
    intensities = dict(params.masks.intensities)
    for recipe in recipes:
        intensities[recipe.intensity] = Intensity(
            name=recipe.intensity, acceleration=recipe.acceleration, center_fraction=recipe.center_fraction
        )
    slices = params.slices.model_copy(
        update={
            "percentile": first.percentile,
            "size": first.size,
            "window_mm": first.window_mm,
            "pixel_mm": first.pixel_mm[1],
        }
    )
    masks = params.masks.model_copy(
        update={"type": first.mask_type, "seed": first.mask_seed, "intensities": intensities}
    )
    train = params.train.model_copy(update={"seed": first.phase_seed}) if params.train is not None else None
    return params.model_copy(update={"slices": slices, "masks": masks, "train": train})


def recipe_mismatch(params: Params, recipes: list[Recipe], consequence: str) -> str | None:
    """One line ``"params.yaml differs from the trained models' recipe (<consequence>): <key>: model X,
    params.yaml Y; ..."`` naming every setting where ``params`` disagrees with ``recipes``
    (:func:`recipe_differences`, each difference once), or None when they agree."""
    differences = list(dict.fromkeys(d for recipe in recipes for d in recipe_differences(recipe, params)))
    if not differences:
        return None
    return f"params.yaml differs from the trained models' recipe ({consequence}): " + "; ".join(differences)
