"""Axial slice selection through the brain, per-volume normalisation, in-plane pad/crop and resampling.

Geometry: volumes are RAS (axis 0 -> Right, 1 -> Anterior, 2 -> Superior). An axial slice
``data[:, :, k]`` is shown as an image with rows running anterior -> posterior and columns
left -> right (``image = data[:, ::-1, k].T``). The phase-encode direction is the last
image axis (columns, left-right).
"""

from __future__ import annotations

import numpy as np


class SliceSelectionError(ValueError):
    """Slices cannot be chosen from a volume; the message names the subject when known."""


def foreground_area(volume: np.ndarray, threshold_fraction: float = 0.1) -> np.ndarray:
    """Head cross-section area (voxel count) of each axial slice.

    Args:
        volume: float ``(X, Y, Z)`` RAS volume.
        threshold_fraction: voxels above this fraction of the volume's 99.5th percentile
            count as head.

    Returns:
        int64 ``(Z,)`` areas in voxels.
    """
    level = threshold_fraction * float(np.percentile(volume, 99.5))
    return (volume > level).sum(axis=(0, 1)).astype(np.int64)


def choose_axial_slices(
    volume: np.ndarray,
    voxel_mm_z: float,
    count: int,
    window_mm: tuple[float, float] = (20.0, 70.0),
    subject: str | None = None,
) -> list[int]:
    """Pick ``count`` adjacent axial slices through the brain, away from jaw and neck.

    The top of the head (vertex) is the most superior slice whose head area is at least 5%
    of the largest. The block is centred on the slice with the largest head
    cross-section (smoothed over 3 slices) between ``window_mm[0]`` and ``window_mm[1]`` mm
    below the vertex: the widest part of the skull, above the skull base (about 40-60 mm
    below the vertex in adults), so the neck or shoulders, which can be wider, are excluded.

    Args:
        volume: float ``(X, Y, Z)`` RAS volume.
        voxel_mm_z: slice spacing in mm.
        count: number of adjacent slices (>= 1).
        window_mm: search window, mm below the vertex.
        subject: subject id, named in error messages (e.g. ``"IXI012-HH-1211"``).

    Returns:
        ``count`` increasing slice indices along Z.

    Raises:
        SliceSelectionError: (a ``ValueError``) if the volume has fewer than ``count``
            axial slices (``slices.per_subject``) or no head is found; the message starts
            with the subject when given.
    """
    who = f"{subject}: " if subject else ""
    if volume.ndim != 3:
        raise SliceSelectionError(f"{who}expected an (X, Y, Z) volume, got shape {volume.shape}")
    n_z = volume.shape[2]
    if count < 1 or count > n_z:
        raise SliceSelectionError(
            f"{who}cannot choose {count} slices (slices.per_subject) from a volume with {n_z} axial slices "
            f"(shape {volume.shape}); lower slices.per_subject to at most {n_z} or drop this subject"
        )
    area = foreground_area(volume).astype(np.float64)
    if area.max() <= 0:
        raise SliceSelectionError(f"{who}no head found (empty foreground)")
    smooth = np.convolve(area, np.ones(3) / 3, mode="same")
    head = np.flatnonzero(area >= 0.05 * area.max())
    vertex = int(head.max())
    lo = max(0, int(np.floor(vertex - window_mm[1] / voxel_mm_z)))
    hi = max(lo + 1, int(np.ceil(vertex - window_mm[0] / voxel_mm_z)) + 1)
    centre = lo + int(np.argmax(smooth[lo:hi]))
    start = int(np.clip(centre - count // 2, 0, n_z - count))
    return list(range(start, start + count))


def axial_image(volume: np.ndarray, index: int) -> np.ndarray:
    """Axial slice ``index`` as an image, rows anterior->posterior, columns left->right.

    Args:
        volume: ``(X, Y, Z)`` RAS volume.

    Returns:
        ``(Y, X)`` array (a view).
    """
    return volume[:, ::-1, index].T


def normalise(volume: np.ndarray, percentile: float = 99.5, subject: str | None = None) -> tuple[np.ndarray, float]:
    """Scale a volume so its ``percentile``-th intensity maps to 1.0 (no clipping).

    Args:
        volume: float ``(X, Y, Z)`` volume in scanner units.
        percentile: in ``(0, 100]``.
        subject: subject id, named in the error message.

    Returns:
        ``(float32 scaled volume, scale)`` where ``scaled = volume / scale`` (scanner units).

    Raises:
        SliceSelectionError: (a ``ValueError``) if the percentile is not positive (a
            volume that is almost entirely zero).
    """
    scale = float(np.percentile(volume, percentile))
    if not scale > 0:
        who = f"{subject}: " if subject else ""
        raise SliceSelectionError(
            f"{who}{percentile}th percentile is {scale}; cannot normalise (volume almost all zero)"
        )
    return (volume / scale).astype(np.float32), scale


def pad_or_crop(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Centre-pad with zeros and/or centre-crop a 2D image to ``(size, size)`` (or to ``size = (rows, cols)``).

    Padding and cropping use the same offset rule, so ``pad_or_crop(pad_or_crop(x, s), x.shape)`` gives ``x``
    back wherever the first call kept it (and 0 where it cropped).

    Args:
        image: ``(H, W)`` array.
        size: output side in pixels, or output shape ``(rows, cols)``.

    Returns:
        ``(size, size)`` (or ``size``) array of the same dtype.
    """
    rows, cols = (size, size) if isinstance(size, int) else size
    out = np.zeros((rows, cols), dtype=image.dtype)
    h, w = image.shape
    src_r, dst_r = _centre_span(h, rows)
    src_c, dst_c = _centre_span(w, cols)
    out[dst_r, dst_c] = image[src_r, src_c]
    return out


def resample_inplane(
    image: np.ndarray, row_mm: float, col_mm: float, pixel_mm: float | tuple[float, float] | None
) -> np.ndarray:
    """Resample a 2D slice to square pixels of ``pixel_mm`` (no-op when None or already there); a pair
    ``(row_mm, col_mm)`` gives rectangular target pixels (a model's recipe, :mod:`mrirecon.models.recipe`).

    Uses ``skimage.transform.rescale`` (bilinear, ``order=1``, with Gaussian anti-aliasing
    when shrinking), so a 1 mm slice evaluated by a model trained on 2 mm data covers the
    same field of view per pixel.

    Args:
        image: float ``(H, W)``; rows spaced ``row_mm``, columns ``col_mm`` apart (mm).
        pixel_mm: target pixel size in mm.

    Returns:
        float32 resampled image.
    """
    if pixel_mm is None:
        return image
    target = (pixel_mm, pixel_mm) if isinstance(pixel_mm, int | float) else pixel_mm
    if abs(row_mm - target[0]) < 1e-6 and abs(col_mm - target[1]) < 1e-6:
        return image
    from skimage.transform import rescale

    factors = (row_mm / target[0], col_mm / target[1])
    return rescale(image, factors, order=1, anti_aliasing=min(factors) < 1, preserve_range=True).astype(np.float32)


def _centre_span(n: int, size: int) -> tuple[slice, slice]:
    if n >= size:
        start = (n - size) // 2
        return slice(start, start + size), slice(0, size)
    start = (size - n) // 2
    return slice(0, n), slice(start, start + n)
