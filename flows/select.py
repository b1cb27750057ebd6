"""Flow of the ``select`` DVC stage: volumes.parquet -> data/processed/slices.parquet."""

from __future__ import annotations

from prefect import flow

from mrirecon.config import load_params
from mrirecon.ops.project import Layout, find_root
from tasks.select import select_task


@flow(name="select")
def select_flow() -> dict:
    """Choose axial brain slices per subject, normalise, and split by subject."""
    layout = Layout(find_root())
    params = load_params(layout.params)
    return select_task(layout.volumes, layout.slices, params.slices, params.split)
