"""Flow of the ``evaluate`` DVC stage: test-subject metrics, reports and figures, MLflow logging and the
model registry. :func:`score_and_report` is shared with :mod:`flows.evaluate_external`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from mrirecon.config import Params, load_params
from mrirecon.evaluation.report import PointResult
from mrirecon.evaluation.scoring import gap_slices
from mrirecon.models.recipe import recipe_mismatch
from mrirecon.ops.project import Layout, find_root
from mrirecon.stages.evaluate import read_history, read_train_summary, scored_intensities
from tasks.artifacts import publish_artifacts_task
from tasks.evaluate import (
    baselines_task,
    evaluate_point_task,
    load_split_task,
    log_parent_task,
    write_reports_task,
)
from tasks.registry import register_best_task


def score_and_report(
    layout: Layout, params: Params, summary: dict, slices: Path, masks: Path, reports: Path, external: bool
) -> tuple[dict, list[PointResult]]:
    """Score the baselines and every grid point of ``summary`` on the test slices of ``slices``/``masks``, per
    intensity; write the reports under ``reports`` and publish the Prefect artifacts.

    The CS weight is always chosen on the project's validation slices. Without ``external`` the train-test gap
    is measured on the project's training slices and each point's metrics and panel go to its MLflow child run;
    with ``external`` (other volumes, no training subjects of their own) neither.

    Returns:
        ``(metrics.json document, scored grid points)``.
    """
    evaluate = params.evaluate
    phase_seed = params.train.seed if params.train else 0
    intensities = scored_intensities({name: p.acceleration for name, p in params.masks.intensities.items()}, summary)
    tests, baselines, results, figures, histories = {}, {}, [], {}, {}
    for intensity in intensities:
        tests[intensity] = load_split_task(slices, masks, intensity, "test")
        val = load_split_task(layout.slices, layout.masks, intensity, "val") if evaluate.cs else None
        train = (
            None if external else gap_slices(load_split_task(layout.slices, layout.masks, intensity, "train"), evaluate)
        )
        baselines[intensity] = baselines_task(intensity, tests[intensity], val, evaluate, phase_seed)
        for entry in (p for p in summary["points"] if p["intensity"] == intensity):
            zero_filled = baselines[intensity].condition(bool(entry.get("synthetic_phase")))["images"]["zero_filled"]
            result, shown = evaluate_point_task(
                layout.root, entry, tests[intensity], train, evaluate, zero_filled, not external
            )
            results.append(result)
            figures[entry["name"]] = shown
            history = read_history(layout.root / entry["model_dir"])
            if history is not None:
                histories[entry["name"]] = history
    report = write_reports_task(reports, intensities, baselines, results, figures, tests, histories, evaluate)
    publish_artifacts_task(report, results, reports, "external" if external else "test")
    return report, results


@flow(name="evaluate")
def evaluate_flow(out: str | None = None, run_id: str | None = None) -> dict:
    """Score every trained grid point (or only ``run_id``), the zero-filled and CS baselines on test subjects;
    diagnose overfitting and robustness; write reports (to ``out``, default ``reports/``); log them to the
    MLflow parent run; register the best models. Where ``params.yaml``'s slices or masks disagree with a model's
    recipe (``spec.json: recipe``), one warning line says so (``result["recipe_mismatch"]``)."""
    layout = Layout(find_root())
    params = load_params(layout.params)
    summary = read_train_summary(layout.models, run_id)
    from mrirecon.models.checkpoint import read_spec  # imports Keras

    recipes = [read_spec(layout.root / p["model_dir"]).recipe for p in summary["points"]]
    mismatch = recipe_mismatch(params, [r for r in recipes if r is not None], "the test slices follow params.yaml")
    if mismatch:
        get_run_logger().warning(mismatch)
    reports = Path(out).resolve() if out else layout.reports
    report, _ = score_and_report(layout, params, summary, layout.slices, layout.masks, reports, external=False)
    register_best_task(layout.root, report, params.profile)
    log_parent_task(layout.root, summary["parent_run_id"], report, reports)
    return {"reports": str(reports), "report": report, "recipe_mismatch": mismatch}
