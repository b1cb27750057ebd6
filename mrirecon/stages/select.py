"""Slice selection stage: ``volumes.parquet`` -> ``slices.parquet`` (normalised, split by subject)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mrirecon.config import SliceParams, SplitParams
from mrirecon.data.slices import axial_image, choose_axial_slices, normalise, pad_or_crop, resample_inplane
from mrirecon.data.split import split_subjects
from mrirecon.data.storage import AtomicParquetWriter, decode_array, encode_array, iter_parquet_rows

SLICE_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("site", pa.string()),
        ("slice_index", pa.int32()),
        ("position", pa.int32()),
        ("split", pa.string()),
        ("scale", pa.float64()),
        ("voxel_mm", pa.list_(pa.float64())),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("image", pa.binary()),
    ]
)


def select_slices(
    volumes_path: str | Path,
    slices_path: str | Path,
    slice_params: SliceParams,
    split_params: SplitParams,
    progress: Callable[[str, list[int]], None] | None = None,
) -> dict[str, int]:
    """Choose, normalise and pad/crop axial slices for every subject; assign splits.

    Each output row is one slice: subject, site, ``slice_index`` (Z index in the RAS
    volume), ``position`` (0..N-1 within the subject's block), split, normalisation scale
    (the volume's ``percentile``-th value, scanner units), voxel size (mm), and the float32
    ``(size, size)`` image (see :func:`mrirecon.data.slices.axial_image` for orientation).

    Returns:
        number of subjects per split.

    Raises:
        ValueError: if the volumes file is empty.
    """
    subjects = pq.read_table(volumes_path, columns=["subject"]).column("subject").to_pylist()
    if not subjects:
        raise ValueError(f"{volumes_path}: no volumes")
    split_of = split_subjects(subjects, split_params.fractions, split_params.seed)
    size = slice_params.size
    with AtomicParquetWriter(slices_path, SLICE_SCHEMA) as writer:
        for row in iter_parquet_rows(volumes_path):
            volume = decode_array(row["data"], row["shape"])
            scaled, scale = normalise(volume, slice_params.percentile, subject=row["subject"])
            indices = choose_axial_slices(
                scaled,
                row["voxel_mm"][2],
                slice_params.per_subject,
                slice_params.window_mm,
                subject=row["subject"],
            )
            writer.write_rows(
                [
                    {
                        "subject": row["subject"],
                        "site": row["site"],
                        "slice_index": index,
                        "position": position,
                        "split": split_of[row["subject"]],
                        "scale": scale,
                        "voxel_mm": _inplane_mm(row["voxel_mm"], slice_params.pixel_mm),
                        "height": size,
                        "width": size,
                        "image": encode_array(
                            _slice_image(scaled, index, row["voxel_mm"], slice_params.pixel_mm, size)
                        ),
                    }
                    for position, index in enumerate(indices)
                ]
            )
            if progress:
                progress(row["subject"], indices)
    counts: dict[str, int] = {}
    for split in split_of.values():
        counts[split] = counts.get(split, 0) + 1
    return counts


def _slice_image(
    scaled: np.ndarray, index: int, voxel_mm: list[float], pixel_mm: float | None, size: int
) -> np.ndarray:
    """Axial slice ``index`` of a normalised RAS volume as a float32 ``(size, size)`` image: resampled
    to ``pixel_mm`` pixels (rows are the volume's Y axis, columns its X axis), then centre-padded/cropped."""
    image = resample_inplane(axial_image(scaled, index), voxel_mm[1], voxel_mm[0], pixel_mm)
    return pad_or_crop(image, size)


def _inplane_mm(voxel_mm: list[float], pixel_mm: float | None) -> list[float]:
    """Voxel size (mm) of the stored slice: in-plane replaced by ``pixel_mm`` when resampled."""
    return list(voxel_mm) if pixel_mm is None else [pixel_mm, pixel_mm, voxel_mm[2]]
