"""Test-only helpers shared by several test modules (import as ``from helpers import ...``).

pytest puts ``tests/`` on ``sys.path`` (no ``__init__.py``: rootdir-relative "prepend"
import mode), so test modules import this file by name, like ``conftest``.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mrirecon.data.slice_set import SliceSet
from mrirecon.data.slices import axial_image, normalise, pad_or_crop
from mrirecon.data.storage import encode_array
from mrirecon.data.volumes import load_volume
from mrirecon.mri.subsample import Intensity
from mrirecon.stages.masks import generate_masks


def to_nifti_bytes(data: np.ndarray, voxel_mm=(2.0, 2.0, 2.0), compress: bool = True) -> bytes:
    """Encode an array as NIfTI-1 bytes with a diagonal RAS affine (synthetic input files).

    Args:
        data: 3D (or other) array, stored as its own dtype.
        voxel_mm: voxel size in mm for the affine.
        compress: gzip the result (level 1).

    Returns:
        the file's bytes, as ``load_volume`` reads them.
    """
    img = nib.Nifti1Image(np.asarray(data), np.diag([*voxel_mm, 1.0]))
    buf = io.BytesIO()
    file_map = nib.Nifti1Image.make_file_map({"image": buf, "header": buf})
    img.to_file_map(file_map)
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1) if compress else raw


def ixi_slice(source: Path, index: int = 60, size: int = 128) -> np.ndarray:
    """A real axial slice: the first ``*_T1.nii.gz`` file of ``source`` (name order), normalised
    (99.5th percentile = 1), slice ``index`` along Z, centre-padded/cropped to float32 ``(size, size)``."""
    path = sorted(source.glob("*_T1.nii.gz"))[0]
    volume = load_volume(path.name, path.read_bytes())
    scaled, _ = normalise(volume.data)
    return pad_or_crop(np.ascontiguousarray(axial_image(scaled, index)), size)


def tiny_slices_and_masks(folder: Path) -> tuple[Path, Path]:
    """``slices.parquet`` with 4 train and 2 val slices of 16x16 random images, and their ``medium`` masks."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "subject": f"IXI{i:03d}-HH-0000",
            "slice_index": 40,
            "split": "train" if i < 4 else "val",
            "height": 16,
            "width": 16,
            "image": encode_array(rng.random((16, 16))),
        }
        for i in range(6)
    ]
    slices, masks = folder / "slices.parquet", folder / "masks.parquet"
    pq.write_table(pa.Table.from_pylist(rows), slices)
    generate_masks(slices, masks, [Intensity(name="medium", acceleration=4.0, center_fraction=0.125)], "random", 1)
    return slices, masks


def ixi_like_nifti(
    path: Path, shape=(256, 256, 150), voxel_mm=(0.9375, 0.9375, 1.2), dtype=np.int16, slope: float = 0.5
) -> nib.Nifti1Image:
    """Write a synthetic head stored like real IXI T1 (sagittal, on-disk axes P, S, R: ``shape`` = (A-P, S-I,
    R-L), ``voxel_mm`` along them), as ``dtype`` with a scale slope, and return the image as written.

    The head is an ellipsoid of smooth, structured intensity (about 300..1000 scanner units) on a zero
    background; qform and sform codes are 1 (scanner).
    """
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    p, s, r = grids
    head = (p / 0.8) ** 2 + (s / 0.85) ** 2 + (r / 0.75) ** 2 < 1
    values = np.where(head, 650 + 250 * np.cos(7 * p) * np.sin(5 * s) + 100 * r, 0.0)
    affine = np.array(
        [[0, 0, voxel_mm[2], -90.0], [-voxel_mm[0], 0, 0, 120.0], [0, voxel_mm[1], 0, -130.0], [0, 0, 0, 1]]
    )
    img = nib.Nifti1Image(np.round(values / slope).astype(dtype), affine)
    img.header.set_slope_inter(slope, 0.0)
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    nib.save(img, path)
    return nib.load(path)


#: Side (pixels) of the synthetic heads of :func:`head` (lesion tests).
LESION_HEAD_SIZE = 64


def head(seed: int = 0) -> np.ndarray:
    """A 64 x 64 "head": a textured ellipse (0.5-1.0) with a dark hole (0.05) inside, on faint noise (<= 0.02)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:LESION_HEAD_SIZE, :LESION_HEAD_SIZE]
    inside = ((rows - 32) / 26) ** 2 + ((cols - 32) / 20) ** 2 <= 1
    image = 0.02 * rng.random((LESION_HEAD_SIZE, LESION_HEAD_SIZE))
    image[inside] = 0.5 + 0.5 * rng.random(inside.sum())
    image[30:34, 30:34] = 0.05
    return image.astype(np.float32)


def head_set(n: int = 3) -> SliceSet:
    images = np.stack([head(i) for i in range(n)])
    return SliceSet(
        images, np.ones((n, LESION_HEAD_SIZE), bool), [f"IXI{i:03d}" for i in range(n)], np.arange(n) + 50, 1.0
    )
