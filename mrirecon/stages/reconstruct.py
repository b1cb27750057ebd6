"""Apply a trained grid point to one's own scan: volume -> the model's slices -> simulated undersampling ->
reconstruction -> volumes on the scan's own voxel grid, a PNG panel and a JSON summary.

The scan is prepared as the model's :class:`~mrirecon.models.recipe.Recipe` says (its training inputs were
made that way): reoriented to RAS, divided by its ``percentile``-th intensity, every axial slice resampled
to the recipe's pixel size and centre-padded/cropped to the model's size (:class:`mrirecon.data.scan.InplaneGrid`).
k-space is simulated from each slice as in training (:func:`mrirecon.mri.forward.measure`: synthetic phase
if the recipe has it) and undersampled with a mask of the recipe's type, acceleration and centre fraction
drawn from ``rng_for(mask seed, scan name, slice, intensity)`` (for an IXI file named by its subject id this
is the mask the ``masks`` stage draws for that slice). Results go back through the same grid, times the
normalisation scale, so they are in the scan's units and overlay it.

Outside the model's field of view (border of a slice cropped by the model's ``size``) and on slices not
reconstructed (``slices``), ``zero_filled``, ``reconstruction`` and ``error`` are 0 and ``reference`` is
the input itself; ``field_of_view`` (1/0) marks where the model's output is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from mrirecon.data.scan import InplaneGrid, Scan, write_like
from mrirecon.data.slice_set import SliceSet
from mrirecon.data.slices import axial_image, foreground_area, normalise
from mrirecon.data.storage import atomic_path, write_json
from mrirecon.data.volumes import is_ixi_t1_name, parse_ixi_name
from mrirecon.models.checkpoint import ModelSpec
from mrirecon.models.inference import reconstruct
from mrirecon.models.recipe import Recipe
from mrirecon.mri.forward import measure, zero_filled_magnitude
from mrirecon.mri.subsample import Intensity, achieved_acceleration, slice_mask
from mrirecon.mri.volume_metrics import volume_metrics

#: NIfTI volumes written, ``<out>/<name>.nii.gz``.
VOLUMES = ("reference", "zero_filled", "reconstruction", "error", "field_of_view")


class RecipeMissing(ValueError):
    """A checkpoint's ``spec.json`` has no recipe, so how to prepare its inputs is unknown."""


@dataclass(frozen=True)
class Simulation:
    """The undersampling simulated on the scan.

    Attributes:
        intensity: the recipe's intensity name (mask seeding key).
        acceleration: nominal acceleration R (1 = fully sampled: every line kept).
        center_fraction: fully sampled centre fraction.
        mask_type: ``random`` or ``equispaced``.
        mask_seed: seed of the per-slice masks.
        synthetic_phase: simulate k-space of ``x exp(i phi)`` (the recipe's setting).
        phase_seed: seed of that phase (the model's ``settings.seed``, as in training).
        warnings: why this is outside the model's training distribution (empty when it is not).
    """

    intensity: str
    acceleration: float
    center_fraction: float
    mask_type: str
    mask_seed: int
    synthetic_phase: bool
    phase_seed: int
    warnings: tuple[str, ...] = ()

    @property
    def fully_sampled(self) -> bool:
        return self.acceleration == 1


def simulation_for(
    spec: ModelSpec, acceleration: float | None = None, center_fraction: float | None = None, seed: int | None = None
) -> Simulation:
    """The recipe's undersampling, with optional overrides (each one off the recipe adds a warning).

    Args:
        spec: the model's spec (with a recipe).
        acceleration: overrides the recipe's R (1 = fully sampled).
        center_fraction: overrides the recipe's centre fraction.
        seed: overrides the recipe's mask seed (a different mask draw; not a warning).

    Raises:
        RecipeMissing: if ``spec.recipe`` is None.
        ValueError: if the acceleration and centre fraction do not fit (``center_fraction <= 1 / R``, R >= 1).
    """
    recipe = require_recipe(spec)
    accel = recipe.acceleration if acceleration is None else float(acceleration)
    cf = recipe.center_fraction if center_fraction is None else float(center_fraction)
    Intensity(name=recipe.intensity, acceleration=accel, center_fraction=cf)  # raises on a bad pair
    warnings = [
        f"{name} {value:g} differs from the {recipe.intensity!r} training value {trained:g}: "
        "outside the model's training distribution"
        for name, value, trained in (
            ("acceleration", accel, recipe.acceleration),
            ("center fraction", cf, recipe.center_fraction),
        )
        if not math.isclose(value, trained)
    ]
    return Simulation(
        recipe.intensity,
        accel,
        cf,
        recipe.mask_type,
        recipe.mask_seed if seed is None else int(seed),
        recipe.synthetic_phase,
        spec.settings.seed,
        tuple(warnings),
    )


def require_recipe(spec: ModelSpec, where: str = "spec.json") -> Recipe:
    """``spec.recipe``, or :class:`RecipeMissing` naming ``where`` and what to do."""
    if spec.recipe is None:
        raise RecipeMissing(
            f"{where} has no recipe (a checkpoint written before recipes were recorded), so how its inputs were "
            "prepared is unknown: retrain the grid point (`mrirecon train`), or pass --params with the "
            "params.yaml it was trained with"
        )
    return spec.recipe


def slice_masks(simulation: Simulation, width: int, scan_key: str, slice_index: Sequence[int]) -> np.ndarray:
    """bool ``(N, width)`` phase-encode masks, one per axial slice, from
    ``rng_for(mask_seed, scan_key, slice, intensity)`` (:func:`mrirecon.mri.subsample.slice_mask`);
    every line when fully sampled."""
    if simulation.fully_sampled:
        return np.ones((len(slice_index), width), dtype=bool)
    return np.stack(
        [
            slice_mask(
                width,
                simulation.acceleration,
                simulation.center_fraction,
                simulation.mask_type,
                simulation.mask_seed,
                scan_key,
                z,
                simulation.intensity,
            )
            for z in slice_index
        ]
    )


def scan_key(scan: Scan) -> str:
    """Seeding key of a scan: the IXI subject id for an IXI T1 file name, else the file name without suffix."""
    return parse_ixi_name(scan.path.name)[0] if is_ixi_t1_name(scan.path.name) else scan.name


@dataclass
class ScanReconstruction:
    """Reconstruction of a scan's axial slices on the model's grid (normalised units).

    Attributes:
        slice_index: int ``(N,)`` axial (RAS Z) indices reconstructed.
        reference, zero_filled, reconstruction: float32 ``(N, size, size)`` magnitudes.
        masks: bool ``(N, size)`` phase-encode masks.
        scale: the normalisation (the scan's ``percentile``-th value, scanner units).
        grid: the in-plane mapping between the scan's slices and the model's grid.
    """

    slice_index: np.ndarray
    reference: np.ndarray
    zero_filled: np.ndarray
    reconstruction: np.ndarray
    masks: np.ndarray
    scale: float
    grid: InplaneGrid


def reconstruct_scan(
    model: keras.Model,
    spec: ModelSpec,
    scan: Scan,
    simulation: Simulation,
    slices: Sequence[int] | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> ScanReconstruction:
    """Prepare, undersample and reconstruct a scan's axial slices as the model's recipe says.

    Args:
        model, spec: the network and its spec (:func:`mrirecon.models.checkpoint.load_trained_model`).
        scan: the scan (:func:`mrirecon.data.scan.read_scan`).
        simulation: the undersampling (:func:`simulation_for`).
        slices: axial (RAS Z) indices to reconstruct (default: all).
        batch_size: slices per network call.
        progress: called with the number of slices done after each batch.

    Raises:
        RecipeMissing: if the spec has no recipe.
        ValueError: on a slice index outside the scan, or a volume that cannot be normalised.
    """
    recipe = require_recipe(spec)
    key = scan_key(scan)
    n_z = scan.ras.shape[2]
    index = np.arange(n_z) if slices is None else np.asarray(sorted(set(int(z) for z in slices)), dtype=int)
    if index.size == 0 or index.min() < 0 or index.max() >= n_z:
        raise ValueError(f"{scan.path}: axial slices must be within 0..{n_z - 1}, got {list(slices or [])[:5]}")
    scaled, scale = normalise(scan.ras, recipe.percentile, subject=str(scan.path))
    x_mm, y_mm, _ = scan.voxel_mm
    grid = InplaneGrid((scan.ras.shape[1], scan.ras.shape[0]), (y_mm, x_mm), recipe.pixel_mm, spec.size)
    images = np.stack([grid.to_model(np.ascontiguousarray(axial_image(scaled, int(z)))) for z in index])
    masks = slice_masks(simulation, spec.size, key, index.tolist())
    zero_filled = np.empty_like(images)
    recon = np.empty_like(images)
    for start in range(0, len(index), batch_size):
        part = slice(start, start + batch_size)
        batch = SliceSet(
            images[part],
            masks[part],
            [key] * len(index[part]),
            index[part],
            simulation.acceleration,
            simulation.intensity,
            simulation.center_fraction,
            simulation.mask_type,
        )
        measured, _ = measure(batch, simulation.synthetic_phase, simulation.phase_seed)
        zero_filled[part] = zero_filled_magnitude(measured)
        recon[part] = reconstruct(
            model,
            spec.point.model,
            batch,
            batch_size=batch_size,
            settings=spec.settings,
            synthetic_phase=simulation.synthetic_phase,
        )
        if progress:
            progress(len(index[part]))
    return ScanReconstruction(index, images, zero_filled, recon, masks, scale, grid)


def on_scan_grid(result: ScanReconstruction, scan: Scan) -> dict[str, np.ndarray]:
    """The volumes of :data:`VOLUMES` as float32 ``(X, Y, Z)`` RAS arrays on the scan's grid, in scanner units.

    ``reference`` is the scan's slice mapped to the model's grid and back without the normalisation
    round trip (equal to the input where no resampling was needed), ``zero_filled`` and
    ``reconstruction`` are the model-grid results mapped back times the scale, ``error`` is
    ``|reconstruction - reference|``; outside ``field_of_view`` see the module docstring.
    """
    grid = result.grid
    fov_slice = grid.field_of_view()
    out = {name: np.zeros(scan.ras.shape, dtype=np.float32) for name in VOLUMES}
    out["reference"] = scan.ras.copy()

    def put(volume: np.ndarray, z: int, image: np.ndarray) -> None:
        volume[:, ::-1, z] = image.T  # inverse of axial_image: image = volume[:, ::-1, z].T

    for i, z in enumerate(int(v) for v in result.slice_index):
        source = np.ascontiguousarray(axial_image(scan.ras, z))
        reference = np.where(fov_slice, grid.from_model(grid.to_model(source)), source)
        zero_filled = np.where(fov_slice, grid.from_model(result.zero_filled[i]) * result.scale, 0)
        recon = np.where(fov_slice, grid.from_model(result.reconstruction[i]) * result.scale, 0)
        put(out["reference"], z, reference)
        put(out["zero_filled"], z, zero_filled)
        put(out["reconstruction"], z, recon)
        put(out["error"], z, np.where(fov_slice, np.abs(recon - reference), 0))
        put(out["field_of_view"], z, fov_slice.astype(np.float32))
    return out


def scored_slices(result: ScanReconstruction) -> np.ndarray:
    """Positions (into ``result``) of slices with head in them: reference voxels above 10% of the 99.5th
    percentile of the reconstructed slices (:func:`mrirecon.data.slices.foreground_area`)."""
    area = foreground_area(np.moveaxis(result.reference, 0, -1))
    return np.flatnonzero(area > 0)


def summary_metrics(result: ScanReconstruction) -> dict[str, dict[str, float | None]]:
    """fastMRI volume-convention NMSE/PSNR (dB)/SSIM (:func:`mrirecon.mri.volume_metrics.volume_metrics`)
    of zero-filled and reconstruction against the reference, on the model's grid (normalised units), over
    the slices with head (:func:`scored_slices`). An identical pair has PSNR None (infinite)."""
    keep = scored_slices(result)
    if keep.size == 0:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for name, estimate in (("zero_filled", result.zero_filled), ("reconstruction", result.reconstruction)):
        values = volume_metrics(result.reference[keep], estimate[keep])
        out[name] = {k.removeprefix("volume_"): (v if math.isfinite(v) else None) for k, v in values.items()}
    return out


def mask_summary(masks: np.ndarray) -> dict[str, float | int]:
    """Lines kept per slice (min, mean, max) of ``W`` and the achieved acceleration ``W / mean kept``."""
    kept = masks.sum(axis=1)
    return {
        "width": int(masks.shape[1]),
        "lines_kept_min": int(kept.min()),
        "lines_kept_mean": float(kept.mean()),
        "lines_kept_max": int(kept.max()),
        "achieved_acceleration": achieved_acceleration(masks.ravel()),  # N W / total kept = W / mean kept
    }


def write_outputs(result: ScanReconstruction, scan: Scan, out_dir: Path, summary: dict, panel_slices: int = 4) -> dict:
    """Write the volumes (``<name>.nii.gz`` on the scan's grid), ``panel.png`` and ``summary.json`` into
    ``out_dir`` (each atomically).

    Args:
        summary: extra entries for ``summary.json`` (model, recipe, simulation ...).
        panel_slices: slices in the PNG panel (evenly spaced over the scored slices).

    Returns:
        the summary written.
    """
    from mrirecon.evaluation.figures import reconstruction_panel

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, volume in on_scan_grid(result, scan).items():
        write_like(scan, volume, out_dir / f"{name}.nii.gz")
    keep = scored_slices(result)
    keep = keep if keep.size else np.arange(len(result.slice_index))
    # evenly spaced over the middle 60% of the head slices (the ends are skull caps or neck)
    spots = np.linspace(0.2, 0.8, panel_slices) if keep.size > panel_slices else np.linspace(0, 1, keep.size)
    shown = keep[np.unique((spots * (keep.size - 1)).round().astype(int))]
    figure = reconstruction_panel(
        result.reference[shown],
        result.zero_filled[shown],
        result.reconstruction[shown],
        f"{scan.path.name}: R={summary.get('simulation', {}).get('acceleration', '?')} (model's grid)",
        [f"z={int(result.slice_index[i])}" for i in shown],
    )
    import matplotlib.pyplot as plt

    with atomic_path(out_dir / "panel.png") as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    fov = result.grid.field_of_view()
    head = scan.ras > 0.1 * np.percentile(scan.ras, 99.5)
    outside = int((head[:, :, result.slice_index] & ~fov.T[:, ::-1, None]).sum())
    full = {
        **summary,
        "slices_reconstructed": int(len(result.slice_index)),
        "slices_scored": int(keep.size),
        "normalisation_scale": result.scale,
        "masks": mask_summary(result.masks),
        "metrics": summary_metrics(result),
        "field_of_view": {
            "model_grid": [result.grid.size, result.grid.size],
            "slice_shape": list(result.grid.shape),
            "resampled_shape": list(result.grid.resampled_shape),
            "head_voxels_outside": outside,
            "note": "outside it (and on slices not reconstructed) zero_filled, reconstruction and error are 0 "
            "and reference is the input",
        },
        "outputs": [f"{name}.nii.gz" for name in VOLUMES] + ["panel.png", "summary.json"],
    }
    write_json(out_dir / "summary.json", full)
    return full
