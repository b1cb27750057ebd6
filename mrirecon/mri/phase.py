"""Synthetic image phase and Hermitian-symmetry bookkeeping for magnitude-only data.

IXI provides magnitude images only. The k-space of a *real* image is Hermitian-symmetric,
``k(-f) = conj(k(f))``, so every sampled phase-encode line also reveals its mirror line
through DC. Simulating undersampling from real images therefore hands a reconstruction
method up to twice the data the nominal acceleration suggests: one of the "data crimes"
described by Shimron, Tamir, Wang & Lustig 2022, "Implicit data crimes: Machine learning
bias arising from misuse of public data", PNAS 119(13):e2117203119.

This module offers two remedies / diagnostics:

* :func:`with_synthetic_phase` multiplies each magnitude slice by ``exp(i*phi)`` with a
  smooth random phase map ``phi`` (:func:`smooth_phase`), so simulated k-space is no
  longer Hermitian. The magnitude is unchanged, so magnitude references and metrics stay
  the same.
* :func:`mirror_lines` / :func:`effective_acceleration` count the phase-encode lines that
  are known from a mask *plus* Hermitian symmetry, i.e. the acceleration a method really
  faces when k-space is simulated from real images.

Index convention: the project's centred FFT (:mod:`mrirecon.mri.fft`) puts frequency 0 at
index ``n // 2`` of an axis of length ``n``; index ``i`` holds frequency ``i - n // 2``
(mod ``n``). The mirror ``-f`` of index ``i`` is therefore ``(2 * (n // 2) - i) % n``,
which is ``(n - i) % n`` for even ``n`` (index 0, the Nyquist frequency, is its own mirror)
and ``n - 1 - i`` for odd ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrirecon.seeding import rng_for


def mirror_index(n: int) -> np.ndarray:
    """Index of the mirrored frequency ``-f`` for each index of a centred FFT axis.

    Args:
        n: axis length (``n >= 1``), DC at index ``n // 2``.

    Returns:
        int ``(n,)`` array ``m`` with ``m[i] = (2 * (n // 2) - i) % n`` (``(n - i) % n`` for
        even ``n``); ``m[m[i]] == i``.

    Raises:
        ValueError: if ``n < 1``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"axis length must be a positive integer, got {n}")
    n = int(n)
    return (2 * (n // 2) - np.arange(n)) % n


def mirror_lines(mask: np.ndarray) -> np.ndarray:
    """Phase-encode lines known from a mask plus Hermitian symmetry.

    For k-space of a real image, line ``c`` (a whole column) determines line
    ``mirror_index(W)[c]`` (``(W - c) % W`` for even ``W``) by ``k(-f) = conj(k(f))``, so the
    lines known are ``mask OR mask[mirror]``.

    Args:
        mask: bool or {0, 1} array ``(..., W)``; the last axis is the phase-encode lines,
            DC at ``W // 2`` (the project's centred FFT convention).

    Returns:
        bool ``(..., W)``: True where the line is sampled or is the mirror of a sampled line.

    Raises:
        ValueError: if the mask is 0-dimensional or has no lines.
    """
    mask = np.asarray(mask)
    if mask.ndim == 0 or mask.shape[-1] == 0:
        raise ValueError(f"mask must have at least one phase-encode line on its last axis, got shape {mask.shape}")
    known = mask.astype(bool)
    return known | known[..., mirror_index(mask.shape[-1])]


def effective_acceleration(mask: np.ndarray, hermitian: bool) -> float | np.ndarray:
    """Acceleration ``W / lines known``, optionally counting Hermitian-mirrored lines.

    Args:
        mask: bool ``(W,)`` phase-encode mask, or ``(..., W)`` for several masks.
        hermitian: if True, count the lines of :func:`mirror_lines` (what is known when
            k-space is simulated from a real image); if False, only the sampled lines (same
            as :func:`mrirecon.mri.subsample.achieved_acceleration`).

    Returns:
        a Python float for a 1D mask, else a float64 array ``(...)`` with one value per
        mask; ``inf`` where no line is known (dimensionless).

    Raises:
        ValueError: as :func:`mirror_lines`.
    """
    mask = np.asarray(mask)
    mirrored = mirror_lines(mask)  # also validates the shape
    known = mirrored if hermitian else mask.astype(bool)
    count = np.count_nonzero(known, axis=-1)
    with np.errstate(divide="ignore"):
        value = np.where(count > 0, mask.shape[-1] / np.maximum(count, 1), np.inf)
    return float(value) if mask.ndim == 1 else value.astype(np.float64)


def smooth_phase(
    shape: tuple[int, int],
    rng: np.random.Generator,
    max_order: int = 3,
    max_radians: float = np.pi,
) -> np.ndarray:
    """A smooth random phase map: a random low-order 2D polynomial scaled to ``±max_radians``.

    Construction (project-defined):

    1. Normalised coordinates ``u = linspace(-1, 1, H)`` (rows), ``v = linspace(-1, 1, W)``
       (columns).
    2. ``p(u, v) = sum_{i + j <= max_order} c_ij u^i v^j`` with independent
       ``c_ij ~ N(0, 1)`` drawn from ``rng`` (``standard_normal``, terms ordered by total
       degree ``d = i + j`` ascending, then ``i`` descending).
    3. Centre and scale: ``phi = max_radians * (p - m) / r`` with ``m = (max p + min p) / 2``
       and ``r = (max p - min p) / 2``, so ``phi`` spans exactly ``[-max_radians,
       max_radians]``. A constant polynomial (probability zero) gives ``phi = 0``.

    Slowly varying phase of this kind mimics the B0/B1-related background phase of real
    MR images (cf. the smooth phase assumption behind partial-Fourier reconstruction).

    Args:
        shape: ``(H, W)`` in pixels, both ``>= 1``.
        rng: private generator (e.g. :func:`mrirecon.seeding.rng_for`); ``(max_order + 1) *
            (max_order + 2) / 2`` normals are drawn from it.
        max_order: highest total polynomial degree, ``>= 1``.
        max_radians: half-range of the phase in radians, ``>= 0`` and finite.

    Returns:
        float32 ``(H, W)`` phase in radians, ``min == -max_radians`` and
        ``max == max_radians`` (up to float32 rounding).

    Raises:
        ValueError: on a shape that is not two positive integers, ``max_order < 1``, or a
            negative / non-finite ``max_radians``.
    """
    if len(shape) != 2 or any(int(s) != s or s < 1 for s in shape):
        raise ValueError(f"shape must be two positive integers (H, W), got {shape}")
    if int(max_order) != max_order or max_order < 1:
        raise ValueError(f"max_order must be an integer >= 1, got {max_order}")
    if not np.isfinite(max_radians) or max_radians < 0:
        raise ValueError(f"max_radians must be finite and >= 0, got {max_radians}")
    h, w = int(shape[0]), int(shape[1])
    u = np.linspace(-1.0, 1.0, h)[:, None]
    v = np.linspace(-1.0, 1.0, w)[None, :]
    powers = [(d - j, j) for d in range(int(max_order) + 1) for j in range(d + 1)]
    coeffs = rng.standard_normal(len(powers))
    poly = np.zeros((h, w))
    for c, (i, j) in zip(coeffs, powers):
        poly = poly + c * (u**i) * (v**j)
    half_range = (poly.max() - poly.min()) / 2.0
    if half_range <= 0:
        return np.zeros((h, w), dtype=np.float32)
    centre = (poly.max() + poly.min()) / 2.0
    return (max_radians * (poly - centre) / half_range).astype(np.float32)


def with_synthetic_phase(
    images: np.ndarray,
    subjects: Sequence[str],
    slice_index: Sequence[int] | np.ndarray,
    seed: int,
    max_order: int = 3,
    max_radians: float = np.pi,
) -> np.ndarray:
    """Complex slices ``images * exp(i * phi)`` with a smooth random phase per slice.

    ``phi`` for slice ``n`` is ``smooth_phase((H, W), rng_for(seed, "phase", subjects[n],
    int(slice_index[n])), max_order, max_radians)``: deterministic per ``(seed, subject,
    slice)``, independent of the order or number of slices passed, and the global
    ``numpy.random`` state is never used.

    Args:
        images: real ``(N, H, W)`` magnitude slices (float32 in this project).
        subjects: ``N`` subject ids.
        slice_index: ``N`` integer slice indices.
        seed: experiment seed.
        max_order: see :func:`smooth_phase`.
        max_radians: see :func:`smooth_phase`.

    Returns:
        complex64 ``(N, H, W)`` with ``abs(out) == abs(images)`` up to float32 rounding.

    Raises:
        ValueError: if ``images`` is not a real 3D array, or ``subjects`` /
            ``slice_index`` do not have ``N`` entries; or as :func:`smooth_phase`.
    """
    images = np.asarray(images)
    if images.ndim != 3 or np.iscomplexobj(images):
        raise ValueError(f"images must be a real (N, H, W) array, got {images.dtype} {images.shape}")
    n, h, w = images.shape
    if len(subjects) != n or len(slice_index) != n:
        raise ValueError(f"{n} images but {len(subjects)} subjects and {len(slice_index)} slice indices")
    out = np.empty((n, h, w), dtype=np.complex64)
    for k in range(n):
        rng = rng_for(seed, "phase", subjects[k], int(slice_index[k]))
        phi = smooth_phase((h, w), rng, max_order, max_radians).astype(np.float64)
        out[k] = images[k].astype(np.float64) * np.exp(1j * phi)
    return out
