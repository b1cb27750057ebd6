"""Flow of ``mrirecon evaluate --source``: the trained models evaluated on another set of volumes.

The source goes through the same ingestion, selection and masks into ``<out>/work`` (never ``data/``),
every subject counts as a test subject, slices are resampled to the training pixel size, and the reports
are written to ``out`` (default ``reports-external/``). Nothing is logged to MLflow or registered.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.evaluate import score_and_report
from mrirecon.config import Params, load_params
from mrirecon.data.storage import write_json
from mrirecon.ops.project import Layout, find_root
from mrirecon.stages.evaluate import ALL_TEST_SPLIT, external_slice_params, read_train_summary
from tasks.ingest import ingest_task, resolve_source_task
from tasks.masks import masks_task
from tasks.select import select_task


def prepare_external(layout: Layout, params: Params, source: str, work: Path) -> tuple[Path, Path]:
    """Ingest, select and mask ``source`` into ``work``; all subjects are test subjects.

    Returns:
        ``(slices.parquet, masks.parquet)`` under ``work``.
    """
    resolved = resolve_source_task(source, None, layout.raw_sample)
    ingest_task(resolved, work / "volumes.parquet", work / "rejected.csv")
    select_task(
        work / "volumes.parquet",
        work / "slices.parquet",
        external_slice_params(params.slices, layout.slices),
        ALL_TEST_SPLIT,
    )
    masks_task(work / "slices.parquet", work / "masks.parquet", params.masks)
    return work / "slices.parquet", work / "masks.parquet"


@flow(name="evaluate-external")
def evaluate_external_flow(source: str, out: str | None = None, run_id: str | None = None) -> dict:
    """Score every trained grid point (or only ``run_id``) and the zero-filled and CS baselines on the volumes
    of ``source`` (a directory or tar); write the reports and ``source.json`` to ``out``."""
    layout = Layout(find_root())
    params = load_params(layout.params)
    summary = read_train_summary(layout.models, run_id)
    reports = Path(out).resolve() if out else layout.root / "reports-external"
    slices, masks = prepare_external(layout, params, source, reports / "work")
    report, _ = score_and_report(layout, params, summary, slices, masks, reports, external=True)
    write_json(reports / "source.json", {"source": source, "models": [p["name"] for p in summary["points"]]})
    return {"reports": str(reports), "report": report}
