"""Random and equispaced 1D Cartesian undersampling masks with a fully sampled centre.

Conventions follow fastMRI's mask functions (Zbontar et al. 2018, arXiv:1811.08839,
``RandomMaskFunc`` / ``EquispacedMaskFunc``), re-implemented here:

* ``num_low = round(W * center_fraction)`` contiguous phase-encode lines around the
  k-space centre are always kept, starting at column ``(W - num_low + 1) // 2``.
* ``random``: every other line is kept independently with probability
  ``p = (W / R - num_low) / (W - num_low)`` so that the expected number of kept lines is
  ``W / R`` (variable density: dense centre, uniform elsewhere).
* ``equispaced``: lines at ``round(offset + k * s)`` from a random offset, with spacing
  ``s = (W - num_low) / (W / R - num_low)`` (fastMRI's adjusted acceleration) kept as a
  real number, so the total is about ``W / R`` even when ``s`` is not an integer
  (gaps are then ``floor(s)`` or ``ceil(s)``).

Acceleration ``R = W / lines kept``. Draws use a private ``numpy.random.Generator`` seeded
from ``(seed, key)`` so the global RNG state is never touched.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mrirecon.seeding import rng_for

MASK_TYPES = ("random", "equispaced")


class Intensity(BaseModel):
    """One undersampling intensity (``params.yaml: masks.intensities.<name>``): nominal acceleration
    ``R`` and the fraction of phase-encode lines in the fully sampled centre.

    Checked on construction: ``R >= 1`` and finite, ``0 < center_fraction < 1`` and
    ``center_fraction <= 1 / R`` (the centre alone must fit the line budget). The rule that also
    involves the slice width ``W`` (``1 <= round(W * cf) <= W / R``) is checked where ``W`` is known
    (:class:`mrirecon.config.Params`, :func:`cartesian_mask`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    acceleration: float = Field(ge=1, allow_inf_nan=False)
    center_fraction: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _centre_fits(self) -> Intensity:
        if self.center_fraction > 1 / self.acceleration + 1e-12:
            raise ValueError(
                f"center_fraction {self.center_fraction} is larger than 1/acceleration = "
                f"{1 / self.acceleration:.4g}: the fully sampled centre alone would exceed the line budget"
            )
        return self


def center_line_count(width: int, center_fraction: float) -> int:
    """Number of fully sampled low-frequency lines, ``round(width * center_fraction)``."""
    return int(round(width * center_fraction))


def cartesian_mask(
    width: int,
    acceleration: float,
    center_fraction: float,
    rng: np.random.Generator,
    mask_type: str = "random",
) -> np.ndarray:
    """Draw a 1D phase-encode mask.

    Valid domain: ``W >= 1``, finite ``R >= 1``, ``0 < cf <= 1`` and
    ``round(W * cf) <= W / R`` (``cf <= 1/R`` is necessary but not sufficient because of
    the rounding). Lines kept: ``random`` keeps ``W / R`` lines in expectation (exactly:
    ``n + (W - n) p`` with ``p`` above); ``equispaced`` keeps ``W / R`` lines up to the
    rounding of the progression, within ``2 + 0.5 / s`` lines (s = spacing).

    Args:
        width: number of phase-encode lines ``W`` (k-space columns).
        acceleration: nominal acceleration ``R >= 1``.
        center_fraction: fraction of lines in the fully sampled centre, ``0 < cf <= 1``
            with ``round(W * cf) <= W / R``.
        rng: generator to draw from (see :func:`rng_for`).
        mask_type: ``"random"`` or ``"equispaced"``.

    Returns:
        bool array ``(W,)``; True = line sampled.

    Raises:
        ValueError: on an unknown mask type, ``W < 1``, ``R < 1`` or not finite, a centre
            fraction outside ``(0, 1]``, or a centre larger than ``W / R``.
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"unknown mask type {mask_type!r}; expected one of {MASK_TYPES}")
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer, got {width}")
    if not np.isfinite(acceleration) or acceleration < 1:
        raise ValueError(f"acceleration must be finite and >= 1, got {acceleration}")
    if not (0 < center_fraction <= 1):
        raise ValueError(f"center_fraction must be in (0, 1], got {center_fraction}")
    width = int(width)
    num_low = center_line_count(width, center_fraction)
    target = width / acceleration
    if num_low > target + 1e-9:
        raise ValueError(f"center_fraction {center_fraction} keeps {num_low} lines, more than W/R = {target:.1f}")
    mask = np.zeros(width, dtype=bool)
    if mask_type == "random":
        prob = (target - num_low) / (width - num_low) if width > num_low else 0.0
        mask = rng.uniform(size=width) < prob
    elif target - num_low > 1e-9:
        spacing = (width - num_low) / (target - num_low)
        offset = rng.uniform(0, spacing)
        positions = np.round(offset + spacing * np.arange(int(np.ceil(width / spacing)) + 1)).astype(int)
        mask[positions[positions < width]] = True
    start = (width - num_low + 1) // 2
    mask[start : start + num_low] = True
    return mask


def slice_mask(
    width: int,
    acceleration: float,
    center_fraction: float,
    mask_type: str,
    seed: int,
    subject: str,
    slice_index: int,
    intensity: str,
) -> np.ndarray:
    """The mask of one slice as the masks stage draws it: :func:`cartesian_mask` from the private generator
    ``rng_for(seed, subject, slice_index, intensity)`` (:func:`mrirecon.seeding.rng_for`), so a slice's mask never
    depends on other slices and a scan reconstructed under its IXI subject id gets the masks stage's masks.

    Returns:
        bool ``(width,)``, True = measured phase-encode column.
    """
    rng = rng_for(seed, subject, int(slice_index), intensity)
    return cartesian_mask(width, acceleration, center_fraction, rng, mask_type)


def achieved_acceleration(mask: np.ndarray) -> float:
    """Acceleration actually achieved by a mask: ``W / lines kept`` (``inf`` if none kept)."""
    kept = int(np.count_nonzero(mask))
    return float("inf") if kept == 0 else mask.shape[-1] / kept
