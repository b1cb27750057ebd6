"""Slice selection stage: ``volumes.parquet`` -> ``slices.parquet`` (normalised, split by subject)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .params import SliceParams, SplitParams
from .slices import axial_image, choose_axial_slices, normalise, pad_or_crop, resample_inplane, split_subjects
from .storage import AtomicParquetWriter, decode_array, encode_array, iter_parquet_rows

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
    ``(size, size)`` image (see :func:`mrirecon.slices.axial_image` for orientation).

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
            indices = choose_axial_slices(scaled, row["voxel_mm"][2], slice_params.per_subject,
                                          tuple(slice_params.window_mm), subject=row["subject"])
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
                        "image": encode_array(pad_or_crop(
                            resample_inplane(axial_image(scaled, index), row["voxel_mm"][1], row["voxel_mm"][0], slice_params.pixel_mm),
                            size,
                        )),
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


def _inplane_mm(voxel_mm: list[float], pixel_mm: float | None) -> list[float]:
    """Voxel size (mm) of the stored slice: in-plane replaced by ``pixel_mm`` when resampled."""
    return list(voxel_mm) if pixel_mm is None else [pixel_mm, pixel_mm, voxel_mm[2]]
