"""Prefect task of the slice-selection step (wrapper over :mod:`mrirecon.stages.select`)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.config import SliceParams, SplitParams
from mrirecon.stages.select import select_slices


@task(name="select-slices", cache_policy=NO_CACHE)
def select_task(volumes_path: Path, slices_path: Path, slice_params: SliceParams, split_params: SplitParams) -> dict:
    """Write ``slices.parquet``; log the chosen slices per subject and the split sizes."""
    logger = get_run_logger()
    counts = select_slices(
        volumes_path,
        slices_path,
        slice_params,
        split_params,
        progress=lambda subject, idx: logger.debug("%s: axial slices %s", subject, idx),
    )
    logger.info("subjects per split: %s", counts)
    return counts
