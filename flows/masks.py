"""Flow of the ``masks`` DVC stage: slices.parquet -> data/processed/masks.parquet."""

from __future__ import annotations

from prefect import flow

from mrirecon.config import load_params
from mrirecon.ops.project import Layout, find_root
from tasks.masks import masks_task


@flow(name="masks")
def masks_flow() -> dict:
    """Draw one phase-encode mask per slice and undersampling intensity."""
    layout = Layout(find_root())
    params = load_params(layout.params)
    return masks_task(layout.slices, layout.masks, params.masks)
