"""Flow of the ``evaluate`` DVC stage: test-subject metrics, reports and figures.

With ``source``, the trained models are evaluated on another set of volumes instead: it goes
through the same ingestion, selection and masks into ``<out>/work`` (never ``data/``), every
subject counts as a test subject, slices are resampled to the training pixel size, and the
reports are written to ``out``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow

from mrirecon.params import SplitParams, load_params
from mrirecon.project import Layout, find_root
from mrirecon.storage import write_json
from tasks.evaluate import (
    baselines_task, evaluate_point_task, load_split_task, log_parent_task, read_train_summary, write_reports_task,
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
    """Score every trained grid point (or only ``run_id``), the zero-filled and CS baselines on
    test subjects; diagnose overfitting and robustness; write reports; register the best models."""
    layout = Layout(find_root())
    params = load_params(layout.params)
    summary = read_train_summary(layout.models, run_id)
    external = source is not None
    reports = Path(out).resolve() if out else (layout.reports if not external else layout.root / "reports-external")
    slices, masks = (_prepare_external(layout, source, reports / "work") if external else (layout.slices, layout.masks))
    evaluate = params.evaluate
    phase_seed = params.train.seed if params.train else 0
    wanted = [i for i in params.masks.intensities if any(p["intensity"] == i for p in summary["points"])]
    intensities = {i: params.masks.intensities[i].acceleration for i in wanted}
    tests, baselines, results, figures, histories = {}, {}, [], {}, {}
    for intensity in wanted:
        tests[intensity] = load_split_task(slices, masks, intensity, "test")
        # external data has no validation/train subjects: CS weight and gap come from the training data
        val = load_split_task(layout.slices, layout.masks, intensity, "val") if evaluate.cs else None
        train = None if external else load_split_task(layout.slices, layout.masks, intensity, "train")
        baselines[intensity] = baselines_task(intensity, tests[intensity], val, evaluate, phase_seed)
        for entry in (p for p in summary["points"] if p["intensity"] == intensity):
            condition = "synthetic_phase" if entry.get("synthetic_phase") else "magnitude"
            shown_zf = baselines[intensity].get(condition, baselines[intensity]["magnitude"])["images"]["zero_filled"]
            result, shown = evaluate_point_task(layout.root, entry, tests[intensity], train, evaluate, shown_zf,
                                                not external)
            results.append(result)
            figures[entry["name"]] = shown
            history_path = layout.root / entry["model_dir"] / "history.json"
            if history_path.exists():
                histories[entry["name"]] = json.loads(history_path.read_text())
    report = write_reports_task(reports, intensities, baselines, results, figures, tests, histories,
                                evaluate.tolerance, evaluate.figure_slices)
    publish_artifacts_task(report, results, reports, "external" if external else "test")
    if not external:
        register_best_task(layout.root, report)
        log_parent_task(layout.root, summary["parent_run_id"], report, reports)
    else:
        write_json(reports / "source.json", {"source": source, "models": [p["name"] for p in summary["points"]]})
    return {"reports": str(reports), "report": report}
