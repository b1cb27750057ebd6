"""Arrays for training and evaluation: slices of one split joined with their masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mrirecon.data.storage import decode_array


@dataclass
class SliceSet:
    """Slices of one split at one intensity.

    Attributes:
        images: float32 ``(N, H, W)`` fully sampled, normalised magnitude slices.
        masks: bool ``(N, W)`` phase-encode masks (True = line sampled).
        subjects: ``N`` subject ids.
        slice_index: int ``(N,)`` axial index in the RAS volume.
        acceleration: nominal acceleration ``R`` of the intensity.
        intensity: the intensity's name (``masks.parquet: intensity``; ``""`` when unknown).
        center_fraction: fraction of phase-encode lines in the fully sampled centre
            (``masks.parquet: center_fraction``; ``None`` when unknown).
        mask_type: mask function, ``"random"`` or ``"equispaced"`` (``masks.parquet: mask_type``;
            ``None`` when unknown).

    ``acceleration``, ``center_fraction`` and ``mask_type`` are the parameters ``masks`` were drawn with
    (:func:`mrirecon.mri.subsample.cartesian_mask`), so fresh masks of the same intensity can be drawn
    (``train.resample_masks``, :func:`mrirecon.models.training.epoch_masks`).
    """

    images: np.ndarray
    masks: np.ndarray
    subjects: list[str]
    slice_index: np.ndarray
    acceleration: float
    intensity: str = ""
    center_fraction: float | None = None
    mask_type: str | None = None

    def __len__(self) -> int:
        return len(self.subjects)


def load_slice_set(slices_path: str | Path, masks_path: str | Path, intensity: str, split: str | None) -> SliceSet:
    """Load the slices of ``split`` (``None`` = all) with their ``intensity`` masks and the parameters
    those masks were drawn with (acceleration, centre fraction, mask type: ``masks.parquet`` columns).

    Rows are ordered by (subject, slice_index), so the order is stable across runs.

    Raises:
        ValueError: if the split or intensity has no rows, or a slice has no mask.
    """
    slice_filter = None if split is None else pc.field("split") == split
    slices = pq.read_table(slices_path, filters=slice_filter).sort_by(
        [("subject", "ascending"), ("slice_index", "ascending")]
    )
    masks = pq.read_table(
        masks_path,
        columns=["subject", "slice_index", "intensity", "mask", "acceleration", "center_fraction", "mask_type"],
        filters=pc.field("intensity") == intensity,
    )
    if slices.num_rows == 0:
        raise ValueError(f"{slices_path}: no slices in split {split!r}")
    if masks.num_rows == 0:
        raise ValueError(f"{masks_path}: no masks for intensity {intensity!r}")
    mask_of = {
        (s, i): m
        for s, i, m in zip(masks["subject"].to_pylist(), masks["slice_index"].to_pylist(), masks["mask"].to_pylist())
    }
    rows = slices.to_pylist()
    missing = [(r["subject"], r["slice_index"]) for r in rows if (r["subject"], r["slice_index"]) not in mask_of]
    if missing:
        raise ValueError(f"{masks_path}: no {intensity!r} mask for {len(missing)} slices, e.g. {missing[0]}")
    images = np.stack([decode_array(r["image"], (r["height"], r["width"])) for r in rows])
    mask_array = np.array([mask_of[(r["subject"], r["slice_index"])] for r in rows], dtype=bool)
    return SliceSet(
        images=images.astype(np.float32),
        masks=mask_array,
        subjects=[r["subject"] for r in rows],
        slice_index=np.array([r["slice_index"] for r in rows]),
        acceleration=float(masks["acceleration"][0].as_py()),
        intensity=intensity,
        center_fraction=float(masks["center_fraction"][0].as_py()),
        mask_type=str(masks["mask_type"][0].as_py()),
    )
