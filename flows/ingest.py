"""Flow of the ``ingest`` DVC stage: raw IXI T1 files -> data/interim/volumes.parquet."""

from __future__ import annotations

from prefect import flow

from mrirecon.config import load_params
from mrirecon.ops.project import Layout, find_root
from tasks.ingest import ingest_task, resolve_source_task


@flow(name="ingest")
def ingest_flow(source: str | None = None) -> dict:
    """Resolve the data source and ingest every volume (bad files go to rejected.csv, with the
    reason; with ``data.strict`` the first bad file stops the run)."""
    layout = Layout(find_root())
    params = load_params(layout.params)
    resolved = resolve_source_task(source, params.data.source, layout.raw_sample)
    summary = ingest_task(
        resolved, layout.volumes, layout.rejected, params.data.limit, params.data.strict, params.compute.ingest_workers
    )
    return {
        "accepted": len(summary.accepted),
        "rejected": len(summary.rejected),
        "rejected_by_reason": {label: len(files) for label, files in summary.rejected_by_kind().items()},
        "source": summary.source,
    }
