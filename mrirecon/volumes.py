"""Reading and checking IXI T1 NIfTI volumes (nibabel), reoriented to RAS.

Pure functions: bytes in, arrays and metadata out. Errors are :class:`VolumeError` with a
message that names the file and the problem, so ingestion can reject one file and go on.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zlib
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np

# IXI names: IXI<nnn>-<Site>-<nnnn>-T1.nii.gz (official tar) or ..._T1.nii.gz (2 mm sample).
IXI_NAME = re.compile(r"^(?P<subject>IXI(?P<number>\d{3})-(?P<site>[A-Za-z]+)-(?P<scan>\d{4}))[-_]T1\.nii(\.gz)?$")

#: Refuse volumes whose voxel data would need more than this many bytes as float32.
MAX_VOXEL_BYTES = 2 * 1024**3


class VolumeError(ValueError):
    """A volume that cannot be used; the message names the file and the reason."""


@dataclass
class Volume:
    """A checked volume in RAS orientation.

    Attributes:
        subject: IXI subject id, e.g. ``"IXI012-HH-1211"``.
        site: acquisition site code (``HH``, ``Guys``, ``IOP``).
        source_file: file name inside the source (directory entry or tar member).
        sha256: hex SHA-256 of the file's bytes as read (compressed).
        data: float32 ``(X, Y, Z)`` voxel values with the header's scale slope/intercept
            applied, axes pointing Right, Anterior, Superior (``nibabel.as_closest_canonical``).
        voxel_mm: voxel size in mm along ``(X, Y, Z)``.
        original_shape: shape as stored on disk.
        original_axcodes: orientation on disk, e.g. ``"PSR"``.
    """

    subject: str
    site: str
    source_file: str
    sha256: str
    data: np.ndarray
    voxel_mm: tuple[float, float, float]
    original_shape: tuple[int, ...]
    original_axcodes: str
    extra: dict = field(default_factory=dict)


def parse_ixi_name(name: str) -> tuple[str, str]:
    """Subject id and site from an IXI T1 file name.

    Args:
        name: base name such as ``IXI012-HH-1211-T1.nii.gz`` or ``IXI012-HH-1211_T1.nii.gz``.

    Returns:
        ``(subject, site)``, e.g. ``("IXI012-HH-1211", "HH")``.

    Raises:
        VolumeError: if the name does not follow the IXI T1 pattern.
    """
    base = name.rsplit("/", 1)[-1]
    match = IXI_NAME.match(base)
    if not match:
        raise VolumeError(f"{name}: not an IXI T1 file name (expected IXI<nnn>-<Site>-<nnnn>-T1.nii.gz)")
    return match["subject"], match["site"]


def is_ixi_t1_name(name: str) -> bool:
    """True if ``name``'s base name follows the IXI T1 pattern."""
    return IXI_NAME.match(name.rsplit("/", 1)[-1]) is not None


def sha256_bytes(raw: bytes) -> str:
    """Hex SHA-256 of ``raw``."""
    return hashlib.sha256(raw).hexdigest()


def _decompress(name: str, raw: bytes) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise VolumeError(f"{name}: damaged or truncated gzip ({exc})") from exc


def load_volume(name: str, raw: bytes, sha256: str | None = None) -> Volume:
    """Parse, check and reorient one NIfTI-1/2 file given as bytes.

    Args:
        name: file name used in messages and to derive subject/site.
        raw: the file's bytes (gzip-compressed or not).
        sha256: hex digest of ``raw`` if already known.

    Returns:
        A :class:`Volume` with float32 RAS data.

    Raises:
        VolumeError: empty file, bad gzip, not NIfTI, not 3D (a 4D series with one volume
            is accepted; more volumes are rejected), absurd header size, non-finite or
            all-zero voxels, non-positive voxel size.
    """
    subject, site = parse_ixi_name(name)
    if not raw:
        raise VolumeError(f"{name}: empty file (0 bytes)")
    digest = sha256 or sha256_bytes(raw)
    data = _decompress(name, raw)
    try:
        img = nib.Nifti1Image.from_bytes(data)
    except Exception as first:  # noqa: BLE001 - nibabel raises several types
        try:
            img = nib.Nifti2Image.from_bytes(data)
        except Exception:  # noqa: BLE001
            raise VolumeError(f"{name}: not a NIfTI image ({first})") from first
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
    elif len(shape) != 3:
        raise VolumeError(f"{name}: expected a 3D volume, header says shape {shape}")
    n_bytes = int(np.prod(shape, dtype=np.int64)) * 4
    if n_bytes > MAX_VOXEL_BYTES:
        raise VolumeError(f"{name}: header shape {shape} would need {n_bytes / 1e9:.1f} GB; refusing")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise VolumeError(f"{name}: invalid voxel size {zooms} mm")
    axcodes = "".join(nib.aff2axcodes(img.affine))
    canonical = nib.as_closest_canonical(img)
    try:
        voxels = np.asarray(canonical.get_fdata(dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - truncated data raises from numpy/nibabel
        raise VolumeError(f"{name}: cannot read voxel data ({exc})") from exc
    if not np.all(np.isfinite(voxels)):
        raise VolumeError(f"{name}: {int((~np.isfinite(voxels)).sum())} NaN/Inf voxels")
    if not np.any(voxels):
        raise VolumeError(f"{name}: all voxels are zero")
    return Volume(
        subject=subject,
        site=site,
        source_file=name,
        sha256=digest,
        data=np.ascontiguousarray(voxels),
        voxel_mm=tuple(float(z) for z in canonical.header.get_zooms()[:3]),
        original_shape=shape,
        original_axcodes=axcodes,
    )


def intensity_stats(data: np.ndarray) -> dict[str, float]:
    """Summary statistics of a volume's voxel values (scanner units).

    Returns:
        ``{"min", "max", "mean", "std", "p99_5"}`` as floats.
    """
    return {
        "min": float(data.min()),
        "max": float(data.max()),
        "mean": float(data.mean()),
        "std": float(data.std()),
        "p99_5": float(np.percentile(data, 99.5)),
    }


def to_nifti_bytes(data: np.ndarray, voxel_mm=(2.0, 2.0, 2.0), compress: bool = True) -> bytes:
    """Encode an array as NIfTI-1 bytes with a diagonal RAS affine (for tests and tools).

    Args:
        data: 3D (or other) array.
        voxel_mm: voxel size in mm for the affine.
        compress: gzip the result.
    """
    img = nib.Nifti1Image(np.asarray(data), np.diag([*voxel_mm, 1.0]))
    buf = io.BytesIO()
    file_map = nib.Nifti1Image.make_file_map({"image": buf, "header": buf})
    img.to_file_map(file_map)
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1) if compress else raw
