"""Run one training in a fresh process and log each of its grid points as an MLflow child run.

Run through :func:`run_in_fresh_process`: each training (the grid points that differ only in
``epochs``, :class:`mrirecon.grid.TrainingGroup`) gets a new (spawned) Python process, so
TensorFlow/Keras memory is returned to the OS when it finishes and peak memory stays flat however
large the grid. What crosses the process boundary is a :class:`TrainJob` (typed, picklable); the
training itself is :mod:`mrirecon.stages.train`.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import socket
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mrirecon.config import ModelSettings
from mrirecon.grid import GridPoint, TrainingGroup
from mrirecon.models.recipe import Recipe


@dataclass(frozen=True)
class TrainJob:
    """Everything a fresh process needs to run one training and save and log its grid points.

    Attributes:
        group: the training: grid points that differ only in ``epochs`` (the unfinished ones of a
            :class:`mrirecon.grid.TrainingGroup` on resume), trained once to the largest.
        settings: settings shared by every grid point (``params.yaml: train``).
        root: project root.
        slices, masks: ``slices.parquet`` and ``masks.parquet``.
        models_dir: the ``models/`` folder.
        experiment_id, parent_run_id: MLflow experiment and the pipeline's parent run.
        tags: MLflow tags of every child run (``data_version``, ``git_commit``).
        config_hashes: :func:`tasks.train.config_hash` of each point (with settings and data version),
            in the order of ``group.points`` (empty: ``""`` for each).
        tracking_uri: MLflow tracking URI to use (long-lived Dask workers serve many projects).
        threads: TensorFlow intra-op threads (None = TensorFlow's default).
        recipe: the group's :class:`mrirecon.models.recipe.Recipe` (its points share intensity and synthetic
            phase), written into each ``spec.json`` and logged as ``recipe.*`` params (None: neither).

    Raises:
        ValueError: if ``config_hashes`` is neither empty nor one per point.
    """

    group: TrainingGroup
    settings: ModelSettings
    root: Path
    slices: Path
    masks: Path
    models_dir: Path
    experiment_id: str
    parent_run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    config_hashes: tuple[str, ...] = ()
    tracking_uri: str | None = None
    threads: int | None = None
    recipe: Recipe | None = None

    def __post_init__(self) -> None:
        if self.config_hashes and len(self.config_hashes) != len(self.group.points):
            raise ValueError(
                f"training {self.group.name}: {len(self.config_hashes)} config hashes for "
                f"{len(self.group.points)} grid points"
            )

    def config_hash(self, point: GridPoint) -> str:
        """The config hash of ``point`` (one of ``group.points``), ``""`` if none was given."""
        return self.config_hashes[self.group.points.index(point)] if self.config_hashes else ""


#: In a training process started with a progress callback: the queue its progress lines go to.
_progress_queue = None


def _set_progress_queue(lines) -> None:
    global _progress_queue
    _progress_queue = lines


def report_progress(line: str) -> None:
    """A progress line of the training (one per epoch, one per published point): to the parent's callback when
    :func:`run_in_fresh_process` was given one, else printed."""
    if _progress_queue is not None:
        _progress_queue.put(line)
    else:
        print(line, flush=True)


def run_in_fresh_process(job: TrainJob, on_progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run :func:`train_job` in a new spawned process and return its result.

    Args:
        job: the training.
        on_progress: called in this process, in order, with each progress line of the training (e.g. a Prefect run
            logger's ``info``, so the lines reach the flow run's logs); None: the training process prints them.
    """
    context = multiprocessing.get_context("spawn")
    if on_progress is None:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            return pool.submit(train_job, job).result()
    lines = context.Queue()
    with ProcessPoolExecutor(
        max_workers=1, mp_context=context, initializer=_set_progress_queue, initargs=(lines,)
    ) as pool:
        future = pool.submit(train_job, job)
        while True:
            try:
                on_progress(lines.get(timeout=0.2))
            except queue.Empty:
                if future.done():
                    break
        while True:  # lines put just before the result arrived
            try:
                on_progress(lines.get(timeout=0.2))
            except queue.Empty:
                break
        return future.result()


def train_job(job: TrainJob) -> list[dict]:
    """Run one training and save, log and publish each of its grid points as soon as it is reached.

    Each point is an MLflow child run of the parent run (tags ``grid_point``, ``training`` = the
    group's name, ``config_hash``, ``host``, ``pid`` and ``job.tags``; params: the point's axes, the
    settings and the recipe as ``recipe.<field>``). Per-epoch ``loss``/``val_loss`` go to every run
    whose point has at least that many epochs. At a point's epoch count its summary metrics and tag
    ``stopped_early`` are logged, it is logged as an MLflow model under ``model/``
    (:mod:`mrirecon.ops.mlflow_model`; metric ``model_log_s``: the seconds that took) with
    ``history.json`` beside it, its folder is published, and its run ends FINISHED; if the
    training fails later, the runs not yet finished end FAILED and the published points stay.

    Returns:
        each point's ``result.json``, in the order of ``job.group.points``: ``{"name", "run_id",
        "stopped_early", "model_dir" (relative to the root), "config_hash", "val_mse", "wall_time_s",
        "epochs_run", "peak_rss_mb"}``.
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
    from mrirecon.ops.mlflow_model import log_mlflow_model
    from mrirecon.stages.train import HISTORY, TrainedPoint, publish, train_group

    group = job.group
    run_ids: dict[str, str] = {}
    open_runs: list[str] = []  # ids of the runs not yet ended, in point order
    outcomes: dict[str, dict] = {}
    try:
        for point in group.points:
            run_id = tracking.start_run(
                root,
                job.experiment_id,
                point.name,
                {
                    **job.tags,
                    "grid_point": point.name,
                    "training": group.name,
                    "config_hash": job.config_hash(point),
                    "host": socket.gethostname(),
                    "pid": str(os.getpid()),
                },
                job.parent_run_id,
            )
            run_ids[point.name] = run_id
            open_runs.append(run_id)
            recipe = job.recipe.as_params() if job.recipe is not None else {}
            tracking.log_params(root, run_id, {**point.as_params(), **job.settings.model_dump(), **recipe})

        def on_data(train: SliceSet, val: SliceSet) -> None:
            for run_id in run_ids.values():
                tracking.log_params(
                    root,
                    run_id,
                    {"train_slices": len(train), "val_slices": len(val), "acceleration": train.acceleration},
                )

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            metrics: dict[str, float] = {k: logs[k] for k in ("loss", "val_loss") if k in logs}
            for point in group.points:
                if point.epochs >= epoch:
                    tracking.log_metrics(root, run_ids[point.name], metrics, step=epoch)
            numbers = " ".join(f"{k}={v:.5g}" for k, v in logs.items())
            report_progress(f"[{group.name}] epoch {epoch}/{group.final.epochs} {numbers}")

        def on_trained(trained: TrainedPoint) -> None:
            point, run_id = trained.point, run_ids[trained.point.name]
            summary = {
                "val_mse": trained.val_mse,
                "wall_time_s": trained.wall_time_s,
                "epochs_run": trained.epochs_run,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
            tracking.log_metrics(root, run_id, summary)
            tracking.set_tags(root, run_id, {"stopped_early": str(trained.stopped_early)})  # "True" / "False"
            client = tracking.client_for(root)
            started = time.perf_counter()
            log_mlflow_model(client, run_id, trained.staging)
            client.log_artifact(run_id, str(trained.staging / HISTORY))
            tracking.log_metrics(root, run_id, {"model_log_s": time.perf_counter() - started})
            outcome = {
                "name": point.name,
                "run_id": run_id,
                "stopped_early": trained.stopped_early,
                "model_dir": str(trained.destination.relative_to(root)),
                "config_hash": job.config_hash(point),
                **summary,
            }
            publish(trained, outcome)
            tracking.end_run(root, run_id, "FINISHED")
            open_runs.remove(run_id)
            outcomes[point.name] = outcome
            report_progress(f"[{group.name}] {point.name}: val_mse={trained.val_mse:.5g}, published")

        paths = (job.slices, job.masks, job.models_dir)
        train_group(group, job.settings, *paths, run_ids, on_data, on_epoch, on_trained, job.recipe)
    except BaseException:
        for run_id in open_runs:
            tracking.end_run(root, run_id, "FAILED")
        raise
    return [outcomes[p.name] for p in group.points]
