"""Prefect tasks of the training step: MLflow parent run and one task per grid point."""

from __future__ import annotations

from pathlib import Path

from prefect.cache_policies import NO_CACHE
from prefect import get_run_logger, task

from mrirecon.grid import GridPoint
from tasks import tracking
from tasks.train_worker import run_in_fresh_process


@task(name="start-parent-run", cache_policy=NO_CACHE)
def start_parent_task(root: Path, experiment: str, tags: dict[str, str], params: dict) -> tuple[str, str]:
    """Create the MLflow parent run of this pipeline run; returns ``(experiment_id, run_id)``."""
    experiment_id = tracking.ensure_experiment(root, experiment)
    run_id = tracking.start_run(root, experiment_id, "pipeline", {**tags, "role": "parent"})
    tracking.log_params(root, run_id, params)
    get_run_logger().info("MLflow parent run %s in experiment %s", run_id, experiment)
    return experiment_id, run_id


@task(name="train-grid-point", task_run_name="train-{point.name}", cache_policy=NO_CACHE)
def train_point_task(point: GridPoint, job: dict) -> dict:
    """Train one grid point in a fresh process (flat memory) as an MLflow child run."""
    result = run_in_fresh_process({**job, "point": point.as_params()})
    get_run_logger().info(
        "%s: val MSE %.5f in %.0f s (%d epochs), peak RSS %.0f MB, run %s",
        point.name, result["val_mse"], result["wall_time_s"], result["epochs_run"], result["peak_rss_mb"], result["run_id"],
    )
    return result
