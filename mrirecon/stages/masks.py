"""Mask generation stage: ``slices.parquet`` -> ``masks.parquet`` (one mask per slice and intensity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mrirecon.data.storage import AtomicParquetWriter
from mrirecon.mri.subsample import Intensity, achieved_acceleration, slice_mask

MASK_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("slice_index", pa.int32()),
        ("split", pa.string()),
        ("intensity", pa.string()),
        ("mask_type", pa.string()),
        ("acceleration", pa.float64()),
        ("center_fraction", pa.float64()),
        ("center_lines", pa.int32()),
        ("lines_kept", pa.int32()),
        ("achieved_acceleration", pa.float64()),
        ("mask", pa.list_(pa.bool_())),
    ]
)


def generate_masks(
    slices_path: str | Path,
    masks_path: str | Path,
    intensities: list[Intensity],
    mask_type: str,
    seed: int,
) -> dict[str, float]:
    """Draw a phase-encode mask for every slice and intensity and write them atomically.

    The mask of (subject, slice, intensity) depends only on ``seed`` and that key (see
    :func:`mrirecon.seeding.rng_for`), so adding subjects never changes existing masks.

    Returns:
        achieved acceleration per intensity name over all masks: total lines / total lines
        kept (``W / mean lines kept``; the mean of per-mask ``W / kept`` is biased upward).
    """
    table = pq.read_table(slices_path, columns=["subject", "slice_index", "split", "width"])
    kept: dict[str, list[int]] = {i.name: [] for i in intensities}
    with AtomicParquetWriter(masks_path, MASK_SCHEMA) as writer:
        for row in table.to_pylist():
            rows = []
            for intensity in intensities:
                mask = slice_mask(
                    row["width"],
                    intensity.acceleration,
                    intensity.center_fraction,
                    mask_type,
                    seed,
                    row["subject"],
                    row["slice_index"],
                    intensity.name,
                )
                accel = achieved_acceleration(mask)
                kept[intensity.name].append(int(mask.sum()))
                rows.append(
                    {
                        "subject": row["subject"],
                        "slice_index": row["slice_index"],
                        "split": row["split"],
                        "intensity": intensity.name,
                        "mask_type": mask_type,
                        "acceleration": intensity.acceleration,
                        "center_fraction": intensity.center_fraction,
                        "center_lines": int(round(row["width"] * intensity.center_fraction)),
                        "lines_kept": int(mask.sum()),
                        "achieved_acceleration": accel,
                        "mask": mask.tolist(),
                    }
                )
            writer.write_rows(rows)
    width = table.column("width")[0].as_py() if table.num_rows else 0
    return {name: float(width / np.mean(values)) for name, values in kept.items()}
