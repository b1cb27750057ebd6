"""Prefect tasks of the training step: MLflow parent run, resume checks, one task per training
(the grid points that differ only in ``epochs``, :class:`mrirecon.grid.TrainingGroup`)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.config import ModelSettings
from mrirecon.grid import GridPoint
from mrirecon.models.recipe import Recipe
from mrirecon.ops import tracking
from mrirecon.ops.worker import TrainJob, run_in_fresh_process
from mrirecon.stages.train import RESULT


def config_hash(point: GridPoint, settings: ModelSettings, data_version: str, recipe: Recipe | None = None) -> str:
    """SHA-256 (16 hex digits) of a grid point's params, shared settings, data version and, if given, recipe
    (:class:`mrirecon.models.recipe.Recipe`).

    The train flow always passes the recipe, so points trained before recipes existed (whose hash has
    none) are retrained once: they lack a recipe in ``spec.json`` and an MLflow model in their run.
    """
    config = {"point": point.as_params(), "settings": settings.model_dump(), "data": data_version}
    if recipe is not None:
        config["recipe"] = recipe.model_dump(mode="json")
    blob = json.dumps(config, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def finished_point(
    root: Path,
    models_dir: Path,
    point: GridPoint,
    settings: ModelSettings,
    data_version: str,
    recipe: Recipe | None = None,
) -> dict | None:
    """The saved result of ``point`` if it finished before with the same configuration and data.

    A point counts as finished when ``models/<name>/result.json`` (written last, by an
    atomic folder rename) has the same ``config_hash`` (:func:`config_hash`, with ``recipe``) and its
    MLflow run is FINISHED.
    """
    path = models_dir / point.name / RESULT
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    if result.get("config_hash") != config_hash(point, settings, data_version, recipe):
        return None
    try:
        status = tracking.client_for(root).get_run(result["run_id"]).info.status
    except Exception:  # noqa: BLE001 - run missing from this store
        return None
    return result if status == "FINISHED" else None


def mark_dead_runs_killed(root: Path, experiment: str) -> list[str]:
    """Mark RUNNING runs started on this host by processes that no longer exist as KILLED.

    Runs carry ``host`` and ``pid`` tags (see :mod:`mrirecon.ops.worker`); a run whose process
    died (e.g. ``kill -9``) would otherwise stay RUNNING forever.

    Returns:
        ids of the runs marked KILLED.
    """
    client = tracking.client_for(root)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    killed = []
    for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get("host") != socket.gethostname() or "pid" not in tags:
            continue
        if not _alive(int(tags["pid"])):
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    return killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@task(name="start-parent-run", cache_policy=NO_CACHE)
def start_parent_task(root: Path, experiment: str, name: str, tags: dict[str, str], params: dict) -> tuple[str, str]:
    """Create the MLflow parent run ``name`` of this pipeline run; returns ``(experiment_id, run_id)``."""
    experiment_id = tracking.ensure_experiment(root, experiment)
    run_id = tracking.start_run(
        root,
        experiment_id,
        name,
        {**tags, "role": "parent", "host": socket.gethostname(), "pid": str(os.getpid())},
    )
    tracking.log_params(root, run_id, params)
    get_run_logger().info("MLflow parent run %s (%s) in experiment %s", run_id, name, experiment)
    return experiment_id, run_id


@task(name="train-group", task_run_name="train-{job.group.name}", cache_policy=NO_CACHE)
def train_group_task(job: TrainJob) -> list[dict]:
    """Run one training in a fresh process (flat memory), each of its grid points an MLflow child run;
    returns the points' ``result.json`` in the order of ``job.group.points``. The training's per-epoch progress
    lines go to this task's run logger, so they are in the flow run's logs (and the terminal)."""
    logger = get_run_logger()
    results = run_in_fresh_process(job, logger.info)
    for result in results:
        logger.info(
            "%s: val MSE %.5f in %.0f s (%d epochs), peak RSS %.0f MB, run %s",
            result["name"],
            result["val_mse"],
            result["wall_time_s"],
            result["epochs_run"],
            result["peak_rss_mb"],
            result["run_id"],
        )
    return results
