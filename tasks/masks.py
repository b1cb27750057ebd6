"""Prefect task of the mask-generation step (wrapper over :mod:`mrirecon.stages.masks`)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.config import MaskParams
from mrirecon.stages.masks import generate_masks


@task(name="generate-masks", cache_policy=NO_CACHE)
def masks_task(slices_path: Path, masks_path: Path, mask_params: MaskParams) -> dict:
    """Write ``masks.parquet``; log the mean achieved acceleration per intensity."""
    achieved = generate_masks(slices_path, masks_path, mask_params.intensity_list(), mask_params.type, mask_params.seed)
    get_run_logger().info(
        "mean achieved acceleration (W / mean lines kept): %s", {k: round(v, 3) for k, v in achieved.items()}
    )
    return achieved
