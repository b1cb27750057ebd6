"""Anyone's own 3D NIfTI scan: read it, take its axial slices to a model's pixel grid and back, and write
volumes on the scan's own voxel grid (nibabel, scikit-image).

IXI ingestion (:mod:`mrirecon.data.volumes`) reads IXI-named files from a source; this module reads one
file of any name and keeps what is needed to write results that overlay it in a viewer: the image's
affine, header and on-disk axis order. The RAS array is ``nibabel.orientations.apply_orientation`` of the
on-disk array with ``io_orientation(affine)`` (what ``nibabel.as_closest_canonical`` does), and
:meth:`Scan.to_disk` applies the inverse permutation/flips, so ``scan.to_disk(scan.ras) == on-disk data``
exactly.

In-plane mapping (:class:`InplaneGrid`): an axial slice (``axial_image``: rows anterior->posterior along
RAS Y, columns left->right along RAS X) is resampled to the model's pixel size and centre-padded/cropped
to ``size x size`` (:func:`mrirecon.data.slices.resample_inplane`, :func:`~mrirecon.data.slices.pad_or_crop`),
as the ``select`` stage does; :meth:`InplaneGrid.from_model` un-pads/crops and resizes back to the
slice's own shape. Where the resampled slice is larger than ``size`` the model never sees the cropped
border: :meth:`InplaneGrid.field_of_view` marks what it does see.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

from mrirecon.data.slices import pad_or_crop, resample_inplane
from mrirecon.data.storage import atomic_path
from mrirecon.data.volumes import MAX_VOXEL_BYTES, VolumeError, check_geometry, checked_voxels, one_line

#: File name endings read as NIfTI.
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class Scan:
    """One 3D scan as read from disk.

    Attributes:
        path: the file.
        image: the nibabel image (affine, header, on-disk shape and dtype).
        ras: float32 ``(X, Y, Z)`` voxel values (scale slope/intercept applied), axes Right, Anterior, Superior.
        voxel_mm: voxel size in mm along ``(X, Y, Z)`` of :attr:`ras`.
        axcodes: on-disk orientation, e.g. ``"PSR"``.
    """

    path: Path
    image: nib.Nifti1Image | nib.Nifti2Image
    ras: np.ndarray
    voxel_mm: tuple[float, float, float]
    axcodes: str

    @property
    def name(self) -> str:
        """File name without ``.nii``/``.nii.gz``, e.g. ``"IXI012-HH-1211-T1"``."""
        name = self.path.name
        for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name

    def to_disk(self, ras: np.ndarray) -> np.ndarray:
        """A ``(X, Y, Z)`` RAS array put back in the file's on-disk axis order and directions (exact)."""
        ornt = io_orientation(self.image.affine)
        return apply_orientation(ras, ornt_transform(axcodes2ornt("RAS"), ornt))


def read_scan(path: str | Path) -> Scan:
    """Read and check one 3D NIfTI-1/2 file (``.nii`` or ``.nii.gz``, any name).

    Args:
        path: the file.

    Returns:
        a :class:`Scan` with float32 RAS data.

    Raises:
        VolumeError: naming the file: missing or not a file (``not-a-file``), not NIfTI (``not-nifti``),
            not 3D (``not-3d``: a 4D file with one volume is accepted), too large (``too-large``), invalid
            voxel size or affine (``bad-voxel-size``, ``bad-orientation``), unreadable, NaN/Inf or all-zero
            voxel data (``unreadable-data``, ``non-finite``, ``all-zero``).
    """
    path = Path(path)
    if not path.is_file():
        raise VolumeError(f"{path}: no such file", "not-a-file")
    try:
        image = nib.load(path)
    except Exception as exc:  # noqa: BLE001 - nibabel raises several types
        raise VolumeError(f"{path}: not a NIfTI image ({one_line(exc)})", "not-nifti") from exc
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise VolumeError(f"{path}: not a NIfTI image ({type(image).__name__})", "not-nifti")
    shape = tuple(int(s) for s in image.shape)
    if len(shape) == 4 and shape[3] == 1:
        image = image.slicer[..., 0]
    elif len(shape) != 3 or min(shape) < 2:
        raise VolumeError(f"{path}: expected a 3D volume, the header says shape {shape}", "not-3d")
    if math.prod(shape) * 4 > MAX_VOXEL_BYTES:
        raise VolumeError(f"{path}: shape {shape} would need more than {MAX_VOXEL_BYTES / 1e9:.1f} GB", "too-large")
    zooms, axcodes, ornt = check_geometry(image, path)
    data = checked_voxels(image, path)
    ras = np.ascontiguousarray(apply_orientation(data, ornt), dtype=np.float32)
    ras_zooms = tuple(zooms[int(i)] for i in np.argsort(ornt[:, 0]))
    return Scan(path, image, ras, (ras_zooms[0], ras_zooms[1], ras_zooms[2]), axcodes)


def write_like(scan: Scan, ras: np.ndarray, dest: str | Path) -> None:
    """Write a float32 RAS volume on ``scan``'s voxel grid: same shape, affine (qform and sform codes),
    on-disk axis order and NIfTI version; no scale slope (values as given). Atomic.

    Raises:
        ValueError: if ``ras`` does not have the scan's RAS shape.
    """
    if ras.shape != scan.ras.shape:
        raise ValueError(f"volume of shape {ras.shape} does not match the scan's RAS shape {scan.ras.shape}")
    header = scan.image.header.copy()
    header.set_data_dtype(np.float32)
    image = type(scan.image)(scan.to_disk(ras.astype(np.float32)), scan.image.affine, header)
    image.header.set_slope_inter(1.0, 0.0)
    raw = image.to_bytes()
    with atomic_path(dest) as tmp:
        tmp.write_bytes(gzip.compress(raw, compresslevel=1) if str(dest).endswith(".gz") else raw)


@dataclass(frozen=True)
class InplaneGrid:
    """The mapping between a scan's axial slices and a model's ``size x size`` pixel grid.

    Attributes:
        shape: ``(rows, cols)`` of the scan's axial slices (RAS ``(Y, X)``).
        slice_mm: ``(row_mm, col_mm)`` of the scan's slices.
        pixel_mm: ``(row_mm, col_mm)`` of the model's pixels.
        size: the model's slice side in pixels.
    """

    shape: tuple[int, int]
    slice_mm: tuple[float, float]
    pixel_mm: tuple[float, float]
    size: int

    @property
    def resampled_shape(self) -> tuple[int, int]:
        """Shape of a slice after resampling to :attr:`pixel_mm`, before pad/crop (as ``skimage.rescale``)."""
        if self.resamples:
            factors = np.array([a / b for a, b in zip(self.slice_mm, self.pixel_mm)])
            rows, cols = np.maximum(np.round(factors * np.array(self.shape)), 1).astype(int)  # as skimage.rescale
            return int(rows), int(cols)
        return self.shape

    @property
    def resamples(self) -> bool:
        """Whether the pixel sizes differ (more than 1e-6 mm)."""
        return not np.allclose(self.slice_mm, self.pixel_mm, rtol=0, atol=1e-6)

    def to_model(self, image: np.ndarray) -> np.ndarray:
        """One ``(rows, cols)`` slice -> float32 ``(size, size)`` on the model's grid."""
        resampled = resample_inplane(image, self.slice_mm[0], self.slice_mm[1], self.pixel_mm)
        return pad_or_crop(np.asarray(resampled, dtype=np.float32), self.size)

    def from_model(self, image: np.ndarray) -> np.ndarray:
        """One ``(size, size)`` slice on the model's grid -> float32 ``(rows, cols)`` on the scan's grid
        (un-pad/crop, then bilinear ``skimage.transform.resize``, anti-aliased where it shrinks); 0 where
        the model's grid was cropped away."""
        uncropped = pad_or_crop(np.asarray(image, dtype=np.float32), self.resampled_shape)
        if not self.resamples:
            return uncropped
        from skimage.transform import resize

        shrinks = any(a > b for a, b in zip(uncropped.shape, self.shape))
        out = resize(uncropped, self.shape, order=1, anti_aliasing=shrinks, preserve_range=True)
        return out.astype(np.float32)

    def field_of_view(self) -> np.ndarray:
        """bool ``(rows, cols)``: True where the scan's slice lies inside the model's ``size x size`` grid."""
        seen = pad_or_crop(np.ones((self.size, self.size), dtype=np.float32), self.resampled_shape)
        if not self.resamples:
            return seen > 0.5
        from skimage.transform import resize

        return resize(seen, self.shape, order=0, anti_aliasing=False, preserve_range=True) > 0.5
