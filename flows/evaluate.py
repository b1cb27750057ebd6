"""Flow of the ``evaluate`` DVC stage: test-subject metrics, reports and figures.

With ``source``, the trained models are evaluated on another set of volumes instead: it goes
through the same ingestion, selection and masks into ``<out>/work`` (never ``data/``), every
subject counts as a test subject, slices are resampled to the training pixel size, and the
reports are written to ``out``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, get_run_logger

from mrirecon.params import SplitParams, load_params
from mrirecon.project import Layout, find_root
from mrirecon.storage import write_json
from tasks.evaluate import (
    evaluate_point_task, load_test_task, log_parent_task, read_train_summary, write_reports_task, zero_filled_task,
)
from tasks.artifacts import publish_artifacts_task
from tasks.ingest import ingest_task, resolve_source_task
from tasks.registry import register_best_task
from tasks.masks import masks_task
from tasks.select import select_task


def _prepare_external(layout: Layout, source: str, work: Path) -> tuple[Path, Path]:
    """Ingest/select/mask another source into ``work``; all subjects are test subjects."""
    params = load_params(layout.params)
    trained_mm = pq.read_table(layout.slices, columns=["voxel_mm"]).column("voxel_mm")[0].as_py()
    slice_params = params.slices.model_copy(update={"pixel_mm": trained_mm[0]})
    resolved = resolve_source_task(source, None, layout.raw_sample)
    ingest_task(resolved, work / "volumes.parquet", work / "rejected.csv")
    all_test = SplitParams(fractions={"train": 0.0, "val": 0.0, "test": 1.0}, seed=0)
    select_task(work / "volumes.parquet", work / "slices.parquet", slice_params, all_test)
    masks_task(work / "slices.parquet", work / "masks.parquet", params.masks)
    return work / "slices.parquet", work / "masks.parquet"


@flow(name="evaluate")
def evaluate_flow(source: str | None = None, out: str | None = None, run_id: str | None = None) -> dict:
    """Score every trained grid point (or only ``run_id``) and the zero-filled baseline on test subjects."""
    logger = get_run_logger()
    layout = Layout(find_root())
    params = load_params(layout.params)
    summary = read_train_summary(layout.models, run_id)
    external = source is not None
    reports = Path(out).resolve() if out else (layout.reports if not external else layout.root / "reports-external")
    slices, masks = (_prepare_external(layout, source, reports / "work") if external else (layout.slices, layout.masks))
    tol, n_fig = params.evaluate.tolerance, params.evaluate.figure_slices
    wanted = [i for i in params.masks.intensities if any(p["intensity"] == i for p in summary["points"])]
    intensities = {i: params.masks.intensities[i].acceleration for i in wanted}
    tests, zero_filled, results, figures, histories = {}, {}, [], {}, {}
    for intensity in wanted:
        tests[intensity] = load_test_task(slices, masks, intensity)
        zero_filled[intensity] = zero_filled_task(tests[intensity], tol)
        logger.info("%s zero-filled: PSNR %.2f dB, SSIM %.3f", intensity, zero_filled[intensity]["psnr"], zero_filled[intensity]["ssim"])
        for entry in (p for p in summary["points"] if p["intensity"] == intensity):
            result, shown = evaluate_point_task(layout.root, entry, tests[intensity], tol, n_fig, not external)
            results.append(result)
            figures[entry["name"]] = shown
            history_path = layout.root / entry["model_dir"] / "history.json"
            if history_path.exists():
                import json

                histories[entry["name"]] = json.loads(history_path.read_text())
    report = write_reports_task(reports, intensities, zero_filled, results, figures, tests, histories, tol, n_fig)
    publish_artifacts_task(report, results, zero_filled, reports, "external" if external else "test")
    if not external:
        register_best_task(layout.root, report)
        log_parent_task(layout.root, summary["parent_run_id"], report, reports)
    else:
        write_json(reports / "source.json", {"source": source, "models": [p["name"] for p in summary["points"]]})
    return {"reports": str(reports), "report": report}
