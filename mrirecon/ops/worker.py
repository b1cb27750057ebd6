"""Train one grid point in a fresh process and log it as an MLflow child run.

Run through :func:`run_in_fresh_process`: each grid point gets a new (spawned) Python
process, so TensorFlow/Keras memory is returned to the OS when the point finishes and
peak memory stays flat however large the grid. What crosses the process boundary is a
:class:`TrainJob` (typed, picklable); the training itself is :mod:`mrirecon.stages.train`.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mrirecon.config import ModelSettings
from mrirecon.grid import GridPoint


@dataclass(frozen=True)
class TrainJob:
    """Everything a fresh process needs to train, save and log one grid point.

    Attributes:
        point: the grid point.
        settings: settings shared by every grid point (``params.yaml: train``).
        root: project root.
        slices, masks: ``slices.parquet`` and ``masks.parquet``.
        models_dir: the ``models/`` folder.
        experiment_id, parent_run_id: MLflow experiment and the pipeline's parent run.
        tags: MLflow tags of the child run (``data_version``, ``git_commit``).
        config_hash: :func:`tasks.train.config_hash` of point, settings and data version.
        tracking_uri: MLflow tracking URI to use (long-lived Dask workers serve many projects).
        threads: TensorFlow intra-op threads (None = TensorFlow's default).
    """

    point: GridPoint
    settings: ModelSettings
    root: Path
    slices: Path
    masks: Path
    models_dir: Path
    experiment_id: str
    parent_run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    config_hash: str = ""
    tracking_uri: str | None = None
    threads: int | None = None


def run_in_fresh_process(job: TrainJob) -> dict:
    """Run :func:`train_job` in a new spawned process and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(train_job, job).result()


def train_job(job: TrainJob) -> dict:
    """Train, save and log one grid point.

    Returns:
        the point's ``result.json``: ``{"name", "run_id", "stopped_early", "model_dir" (relative to
        the root), "config_hash", "val_mse", "wall_time_s", "epochs_run", "peak_rss_mb"}``.
    """
    from mrirecon.ops.project import configure_environment

    root = Path(job.root)
    if job.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = job.tracking_uri  # long-lived Dask workers serve many projects
    configure_environment(root)
    if job.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(job.threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, job.threads))
    from mrirecon.data.slice_set import SliceSet
    from mrirecon.ops import tracking
    from mrirecon.stages.train import publish, train_grid_point

    point = job.point
    run_id = tracking.start_run(
        root,
        job.experiment_id,
        point.name,
        {
            **job.tags,
            "grid_point": point.name,
            "config_hash": job.config_hash,
            "host": socket.gethostname(),
            "pid": str(os.getpid()),
        },
        job.parent_run_id,
    )
    try:
        tracking.log_params(root, run_id, {**point.as_params(), **job.settings.model_dump()})

        def on_data(train: SliceSet, val: SliceSet) -> None:
            tracking.log_params(
                root, run_id, {"train_slices": len(train), "val_slices": len(val), "acceleration": train.acceleration}
            )

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            tracking.log_metrics(root, run_id, {k: logs[k] for k in ("loss", "val_loss") if k in logs}, step=epoch)
            print(
                f"[{point.name}] epoch {epoch}/{point.epochs} " + " ".join(f"{k}={v:.5g}" for k, v in logs.items()),
                flush=True,
            )

        trained = train_grid_point(
            point, job.settings, job.slices, job.masks, job.models_dir, run_id, on_data, on_epoch
        )
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        summary = {
            "val_mse": trained.val_mse,
            "wall_time_s": trained.wall_time_s,
            "epochs_run": trained.epochs_run,
            "peak_rss_mb": peak_rss_mb,
        }
        tracking.log_metrics(root, run_id, summary)
        tracking.set_tags(root, run_id, {"stopped_early": str(trained.stopped_early)})  # "True" / "False"
        tracking.client_for(root).log_artifacts(run_id, str(trained.staging), "model")
        outcome = {
            "name": point.name,
            "run_id": run_id,
            "stopped_early": trained.stopped_early,
            "model_dir": str(trained.destination.relative_to(root)),
            "config_hash": job.config_hash,
            **summary,
        }
        publish(trained, outcome)
        tracking.end_run(root, run_id, "FINISHED")
    except BaseException:
        tracking.end_run(root, run_id, "FAILED")
        raise
    return outcome
