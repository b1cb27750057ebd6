"""Flow of ``mrirecon evaluate --source``: the trained models evaluated on another set of volumes.

The source goes through the same ingestion, selection and masks into ``<out>/work`` (never ``data/``),
every subject counts as a test subject, and the reports are written to ``out`` (default
``reports-external/``). Slices and masks follow the trained models' recipe (``spec.json: recipe``,
:func:`mrirecon.models.recipe.params_following`: normalisation, size, pixel size, mask family, phase seed),
not ``params.yaml``; where ``params.yaml`` disagrees, one warning line says so. Models trained before
recipes existed fall back to ``params.yaml`` (slices resampled to the training pixel size). Nothing is
logged to MLflow or registered.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.evaluate import score_and_report
from mrirecon.config import Params, SliceParams, load_params
from mrirecon.data.storage import write_json
from mrirecon.models.recipe import params_following, recipe_mismatch
from mrirecon.ops.project import Layout, find_root
from mrirecon.stages.evaluate import ALL_TEST_SPLIT, external_slice_params, read_train_summary
from tasks.ingest import ingest_task, resolve_source_task
from tasks.masks import masks_task
from tasks.select import select_task


def prepare_external(
    layout: Layout, params: Params, source: str, work: Path, slice_params: SliceParams | None = None
) -> tuple[Path, Path]:
    """Ingest, select (with ``slice_params``, default ``params.slices`` at the training pixel size) and mask
    (``params.masks``) ``source`` into ``work``; all subjects are test subjects.

    Returns:
        ``(slices.parquet, masks.parquet)`` under ``work``.
    """
    resolved = resolve_source_task(source, None, layout.raw_sample)
    ingest_task(resolved, work / "volumes.parquet", work / "rejected.csv")
    select_task(
        work / "volumes.parquet",
        work / "slices.parquet",
        slice_params or external_slice_params(params.slices, layout.slices),
        ALL_TEST_SPLIT,
    )
    masks_task(work / "slices.parquet", work / "masks.parquet", params.masks)
    return work / "slices.parquet", work / "masks.parquet"


@flow(name="evaluate-external")
def evaluate_external_flow(source: str, out: str | None = None, run_id: str | None = None) -> dict:
    """Score every trained grid point (or only ``run_id``) and the zero-filled and CS baselines on the volumes
    of ``source`` (a directory or tar), its slices and masks made as the models' recipe says; write the reports
    and ``source.json`` to ``out``.

    Returns:
        ``{"reports", "report", "recipe_mismatch"}``: the last is the one-line warning where ``params.yaml``
        disagrees with the recipe (None when it agrees or the models have no recipe).
    """
    logger = get_run_logger()
    layout = Layout(find_root())
    params = load_params(layout.params)
    summary = read_train_summary(layout.models, run_id)
    reports = Path(out).resolve() if out else layout.root / "reports-external"
    from mrirecon.models.checkpoint import read_spec  # imports Keras

    recipes = [read_spec(layout.root / p["model_dir"]).recipe for p in summary["points"]]
    mismatch, slice_params = None, None
    if recipes and all(r is not None for r in recipes):
        known = [r for r in recipes if r is not None]
        mismatch = recipe_mismatch(params, known, "following the recipe")
        params = params_following(params, known)
        slice_params = params.slices
    else:
        logger.warning("models trained before recipes existed: slices and masks follow params.yaml")
    if mismatch:
        logger.warning(mismatch)
    slices, masks = prepare_external(layout, params, source, reports / "work", slice_params)
    report, _ = score_and_report(layout, params, summary, slices, masks, reports, external=True)
    write_json(reports / "source.json", {"source": source, "models": [p["name"] for p in summary["points"]]})
    return {"reports": str(reports), "report": report, "recipe_mismatch": mismatch}
