"""Reading and checking IXI T1 NIfTI volumes (nibabel), reoriented to RAS.

Pure functions: bytes in, arrays and metadata out. Errors are :class:`VolumeError` with a
one-line message that names the file and the problem, and a ``kind`` (see
:data:`REJECTION_KINDS`), so ingestion can reject one file, go on, and summarise by reason.

Checks, cheapest first: the file name; empty file; the NIfTI header, parsed from the first
bytes before any voxel data is decompressed (no header, invalid or absurd dimensions); the
gzip stream (damaged, truncated, or inflating beyond what the header announces); 3D (a 4D
file with a single volume is accepted as 3D, more volumes are rejected; a 2D image or a 3D
array with a dimension of 1 is rejected); voxel size; orientation; voxel data length;
NaN/Inf voxels; all-zero volume.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import io_orientation

# IXI names: IXI<nnn>-<Site>-<nnnn>-T1.nii.gz (official tar) or ..._T1.nii.gz (2 mm sample).
IXI_NAME = re.compile(r"^(?P<subject>IXI(?P<number>\d{3})-(?P<site>[A-Za-z]+)-(?P<scan>\d{4}))[-_]T1\.nii(\.gz)?$")
# Any IXI NIfTI name, e.g. IXI002-Guys-0828-T2.nii.gz, -PD, -MRA, -DTI-00: used to tell an IXI
# file of another modality (rejected with a reason) from unrelated files (skipped).
IXI_ANY_NAME = re.compile(r"^(?P<subject>IXI\d{3}-[A-Za-z]+-\d{4})[-_](?P<modality>[A-Za-z0-9]+(?:-\d+)?)\.nii(\.gz)?$")

#: Refuse volumes whose voxel data would need more than this many bytes as float32.
MAX_VOXEL_BYTES = 2 * 1024**3
#: Bytes decompressed before the header is parsed (NIfTI-1 header = 348, NIfTI-2 = 540).
_HEAD_BYTES = 540
#: Decompressed bytes allowed beyond what the header announces (extensions, padding).
_INFLATE_SLACK = 16 * 1024**2

#: Short label of each rejection kind (:attr:`VolumeError.kind`), used to group the
#: end-of-ingestion summary. Ingestion and sources add their own kinds to this table.
REJECTION_KINDS: dict[str, str] = {
    "invalid": "invalid file",
    "not-ixi-name": "not an IXI T1 file name",
    "not-t1": "not a T1 file",
    "empty": "empty file",
    "bad-gzip": "damaged or truncated gzip",
    "not-nifti": "not a NIfTI image",
    "not-3d": "not a 3D volume",
    "too-large": "header dimensions too large",
    "bad-voxel-size": "invalid voxel size",
    "bad-orientation": "invalid orientation (affine)",
    "unreadable-data": "voxel data cannot be read",
    "non-finite": "NaN/Inf voxels",
    "all-zero": "all voxels zero",
    "duplicate": "duplicate subject",
    "not-a-file": "not a regular file",
    "unreadable-file": "file cannot be read",
    "file-too-large": "file too large",
    "truncated-archive": "truncated or damaged tar archive",
}


class VolumeError(ValueError):
    """A volume that cannot be used; the message names the file and the reason.

    Args:
        message: one line, ``"<file>: <reason>"``.
        kind: short machine-readable category (a key of :data:`REJECTION_KINDS`), used to
            group rejected files in the ingestion summary.
    """

    def __init__(self, message: str, kind: str = "invalid"):
        super().__init__(message)
        self.kind = kind


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


def parse_ixi_name(name: str) -> tuple[str, str]:
    """Subject id and site from an IXI T1 file name.

    Args:
        name: base name such as ``IXI012-HH-1211-T1.nii.gz`` or ``IXI012-HH-1211_T1.nii.gz``
            (a leading folder, ``a/b/NAME``, is ignored).

    Returns:
        ``(subject, site)``, e.g. ``("IXI012-HH-1211", "HH")``.

    Raises:
        VolumeError: (kind ``not-ixi-name``) if the name does not follow the IXI T1 pattern
            (sources report IXI files of another modality separately, see
            :func:`not_t1_error`).
    """
    base = name.rsplit("/", 1)[-1]
    match = IXI_NAME.match(base)
    if not match:
        raise VolumeError(
            f"{name}: not an IXI T1 file name (expected IXI<nnn>-<Site>-<nnnn>-T1.nii.gz)", "not-ixi-name"
        )
    return match["subject"], match["site"]


def is_ixi_t1_name(name: str) -> bool:
    """True if ``name``'s base name follows the IXI T1 pattern."""
    return IXI_NAME.match(name.rsplit("/", 1)[-1]) is not None


def ixi_modality(name: str) -> str | None:
    """The modality part of an IXI NIfTI file name, or None for a name that is not IXI-like.

    Args:
        name: file name, optionally with leading folders (``a/b/NAME``).

    Returns:
        e.g. ``"T1"`` for ``IXI002-Guys-0828-T1.nii.gz``, ``"T2"``, ``"PD"``, ``"MRA"``,
        ``"DTI-00"``; None for names such as ``README.txt`` or ``IXI.xls``.
    """
    match = IXI_ANY_NAME.match(name.rsplit("/", 1)[-1])
    return match["modality"] if match else None


def not_t1_error(name: str) -> VolumeError | None:
    """The rejection of an IXI file of another modality (``-T2``, ``-PD``, ``-MRA``, ...).

    Args:
        name: file name, optionally with leading folders.

    Returns:
        a :class:`VolumeError` of kind ``not-t1`` with the message
        ``"<name>: not a T1 file (modality T2)"`` for an IXI name of a modality other than
        T1; None for an IXI T1 name or a name that is not IXI-like (unrelated files).
    """
    modality = ixi_modality(name)
    if modality is None or is_ixi_t1_name(name):
        return None
    return VolumeError(f"{name}: not a T1 file (modality {modality})", "not-t1")


def sha256_bytes(raw: bytes) -> str:
    """Hex SHA-256 of ``raw``."""
    return hashlib.sha256(raw).hexdigest()


def _parse_header(name: str, head: bytes) -> tuple[tuple[int, ...], int]:
    """Shape and expected file size from the first bytes of an (uncompressed) NIfTI file.

    Only the fixed-size header is read, so an absurd shape is refused before any voxel
    data is decompressed or allocated.

    Returns:
        ``(shape, expected bytes = data offset + voxel bytes)``.

    Raises:
        VolumeError: no NIfTI-1/2 header (``not-nifti``), invalid dimensions
            (``not-nifti``), or a shape needing more than :data:`MAX_VOXEL_BYTES` as
            float32 (``too-large``).
    """
    for klass, magics in ((nib.Nifti1Header, (b"n+1", b"ni1")), (nib.Nifti2Header, (b"n+2", b"ni2"))):
        size = klass.sizeof_hdr
        if len(head) < size:
            continue
        for endian in "<>":
            if struct.unpack(endian + "i", head[:4])[0] != size:
                continue
            header = klass(binaryblock=head[:size], endianness=endian, check=False)
            if bytes(header["magic"]).rstrip(b"\0") not in magics:
                continue
            try:
                shape = tuple(int(s) for s in header.get_data_shape())
                itemsize = header.get_data_dtype().itemsize
                offset = int(header.get_data_offset())
            except Exception as exc:  # noqa: BLE001 - nibabel raises several types for bad headers
                raise VolumeError(f"{name}: not a NIfTI image (invalid header: {one_line(exc)})", "not-nifti") from exc
            if not shape or any(s < 1 for s in shape):
                raise VolumeError(f"{name}: not a NIfTI image (invalid dimensions {shape} in the header)", "not-nifti")
            voxels = math.prod(shape)  # Python ints: no overflow for absurd NIfTI-2 dimensions
            if voxels * 4 > MAX_VOXEL_BYTES:
                raise VolumeError(
                    f"{name}: header shape {shape} would need {voxels * 4 / 1e9:.1f} GB as float32 "
                    f"(limit {MAX_VOXEL_BYTES / 1e9:.1f} GB); refusing before reading the data",
                    "too-large",
                )
            return shape, max(offset, size + 4) + voxels * itemsize  # + 4: extension flag
    raise VolumeError(f"{name}: not a NIfTI image (no NIfTI-1/2 header found)", "not-nifti")


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _inflate(name: str, raw: bytes) -> tuple[bytes, int]:
    """Decompress a gzip-compressed NIfTI file, reading the header first.

    The first :data:`_HEAD_BYTES` are decompressed and parsed (:func:`_parse_header`);
    the rest is decompressed only up to the size the header announces plus
    :data:`_INFLATE_SLACK`, so neither an absurd header nor a decompression bomb can
    exhaust memory. Concatenated gzip members are supported.

    Returns:
        ``(decompressed bytes, file size the header announces)``.

    Raises:
        VolumeError: damaged or truncated gzip (``bad-gzip``), more data than the header
            announces (``too-large``), or a header error of :func:`_parse_header`.
    """
    out = bytearray()
    pending = raw
    expected: int | None = None  # file size the header announces, once parsed
    try:
        while True:  # one gzip member per pass (concatenated members are valid gzip)
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip wrapper, CRC checked
            while not inflater.eof:
                if expected is None and len(out) >= _HEAD_BYTES:
                    expected = _parse_header(name, bytes(out))[1]
                cap = _HEAD_BYTES if expected is None else expected + _INFLATE_SLACK
                room = cap + 1 - len(out)
                chunk = inflater.decompress(pending, room)
                out += chunk
                pending = inflater.unconsumed_tail
                if expected is not None and len(out) > cap:
                    raise VolumeError(
                        f"{name}: decompresses to more than the {expected} bytes its header announces; refusing",
                        "too-large",
                    )
                if not pending and len(chunk) < room:
                    break  # input used up and no output pending
            if not inflater.eof:
                raise VolumeError(
                    f"{name}: damaged or truncated gzip (compressed data ends before the end-of-stream marker)",
                    "bad-gzip",
                )
            pending = inflater.unused_data
            if not pending.strip(b"\0"):
                break  # trailing zero padding is tolerated, as by gzip itself
    except zlib.error as exc:
        raise VolumeError(f"{name}: damaged or truncated gzip ({one_line(exc)})", "bad-gzip") from exc
    if expected is None:  # the whole file is shorter than a NIfTI-2 header
        expected = _parse_header(name, bytes(out))[1]
    return bytes(out), expected


def load_volume(name: str, raw: bytes, sha256: str | None = None) -> Volume:
    """Parse, check and reorient one NIfTI-1/2 file given as bytes.

    Checks run cheapest first, and the header (dimensions, size) is checked before any
    voxel data is decompressed or allocated.

    Args:
        name: file name used in messages and to derive subject/site.
        raw: the file's bytes (gzip-compressed or not).
        sha256: hex digest of ``raw`` if already known.

    Returns:
        A :class:`Volume` with float32 ``(X, Y, Z)`` RAS data.

    Raises:
        VolumeError: with one of these :attr:`~VolumeError.kind` values: ``not-ixi-name``
            (file name), ``empty`` (0 bytes), ``bad-gzip`` (damaged or
            truncated gzip), ``not-nifti``, ``not-3d`` (2D image, a 3D array with a
            dimension of 1, or a 4D series with more than one volume; a 4D file holding a
            single volume, shape ``(X, Y, Z, 1)``, is accepted as 3D), ``too-large``
            (header dimensions needing more than :data:`MAX_VOXEL_BYTES` as float32, or a
            gzip stream longer than the header announces), ``bad-voxel-size`` (non-positive
            or non-finite voxel size), ``bad-orientation`` (unusable affine),
            ``unreadable-data`` (truncated voxel data), ``non-finite`` (NaN/Inf voxels),
            ``all-zero``.
    """
    subject, site = parse_ixi_name(name)
    if not raw:
        raise VolumeError(f"{name}: empty file (0 bytes)", "empty")
    digest = sha256 or sha256_bytes(raw)
    if raw[:2] == b"\x1f\x8b":
        data, expected = _inflate(name, raw)
    else:
        data, expected = raw, _parse_header(name, raw[:_HEAD_BYTES])[1]
    if len(data) < expected:
        raise VolumeError(
            f"{name}: cannot read voxel data (truncated: {len(data)} bytes, the header announces {expected})",
            "unreadable-data",
        )
    try:
        img = nib.Nifti1Image.from_bytes(data)
    except Exception as first:  # noqa: BLE001 - nibabel raises several types
        try:
            img = nib.Nifti2Image.from_bytes(data)
        except Exception:  # noqa: BLE001
            raise VolumeError(f"{name}: not a NIfTI image ({one_line(first)})", "not-nifti") from first
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
    elif len(shape) != 3:
        detail = "a 2D image" if len(shape) < 3 else f"a {len(shape)}D series of {math.prod(shape[3:])} volumes"
        raise VolumeError(f"{name}: expected a 3D volume, header says shape {shape} ({detail})", "not-3d")
    if min(shape[:3]) < 2:
        raise VolumeError(f"{name}: expected a 3D volume, header says shape {shape} (a 2D image)", "not-3d")
    n_bytes = math.prod(shape) * 4
    if n_bytes > MAX_VOXEL_BYTES:  # already refused by _parse_header; kept as a second guard
        raise VolumeError(f"{name}: header shape {shape} would need {n_bytes / 1e9:.1f} GB; refusing", "too-large")
    _, axcodes, _ = check_geometry(img, name)
    canonical = nib.as_closest_canonical(img)
    voxels = checked_voxels(canonical, name)
    ras_zooms = canonical.header.get_zooms()
    return Volume(
        subject=subject,
        site=site,
        source_file=name,
        sha256=digest,
        data=np.ascontiguousarray(voxels),
        voxel_mm=(float(ras_zooms[0]), float(ras_zooms[1]), float(ras_zooms[2])),
        original_shape=shape,
        original_axcodes=axcodes,
    )


def check_geometry(img: nib.Nifti1Image, name: str | Path) -> tuple[tuple[float, float, float], str, np.ndarray]:
    """The checked geometry of a 3D NIfTI image: voxel size, on-disk axis codes and orientation.

    Args:
        img: a 3D NIfTI-1/2 image.
        name: the file, named in errors.

    Returns:
        ``(voxel size (mm) along the on-disk axes, axis codes such as "PSR", nibabel orientation of the on-disk
        axes relative to RAS (``nibabel.orientations.io_orientation``, shape (3, 2)))``.

    Raises:
        VolumeError: ``bad-voxel-size`` (a zero, negative or non-finite voxel size) or ``bad-orientation`` (a
            non-finite or degenerate affine).
    """
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise VolumeError(f"{name}: invalid voxel size {zooms} mm", "bad-voxel-size")
    try:
        if not np.all(np.isfinite(img.affine)):
            raise ValueError(f"non-finite affine {img.affine.tolist()}")
        axcodes = "".join(nib.aff2axcodes(img.affine))
        ornt = io_orientation(img.affine)
    except Exception as exc:  # noqa: BLE001 - nibabel/numpy raise several types
        raise VolumeError(f"{name}: invalid orientation ({one_line(exc)})", "bad-orientation") from exc
    return (zooms[0], zooms[1], zooms[2]), axcodes, ornt


def checked_voxels(img: nib.Nifti1Image, name: str | Path) -> np.ndarray:
    """The voxel data of a NIfTI image as float32 (header scale slope and intercept applied), checked.

    Raises:
        VolumeError: ``unreadable-data`` (truncated or corrupt data), ``non-finite`` (NaN/Inf voxels) or
            ``all-zero``; the message names ``name``.
    """
    try:
        voxels = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - truncated data raises from numpy/nibabel
        raise VolumeError(f"{name}: cannot read voxel data ({one_line(exc)})", "unreadable-data") from exc
    if not np.all(np.isfinite(voxels)):
        raise VolumeError(f"{name}: {int((~np.isfinite(voxels)).sum())} NaN/Inf voxels", "non-finite")
    if not np.any(voxels):
        raise VolumeError(f"{name}: all voxels are zero", "all-zero")
    return voxels


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
