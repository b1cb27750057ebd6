"""Flow of the ``train`` DVC stage: the grid, each point an MLflow child run -> models/.

Grid points that differ only in ``epochs`` share one training (:func:`mrirecon.stages.train.plan_trainings`):
it runs to the largest epoch count and each point is the checkpoint at its own epoch count, an MLflow
child run of its own tagged ``training=<group name>``. With ``train.early_stopping_patience`` set
every point trains alone (early stopping's restored best weights are no checkpoint of a longer run).
Trainings run concurrently on a Prefect task runner: ``compute.workers`` at once by
default, or on an existing Dask cluster (``compute.dask_address`` / ``--dask-address``)
through prefect-dask. Whatever the runner, each training runs in its own freshly spawned
process (Keras never runs in a shared process or thread), with ``cores / workers`` TensorFlow
threads. Locally the task runner is a thread pool whose threads only wait on those
processes: unlike Prefect's process-pool runner, it keeps every task run in the same Prefect
API as the flow (with the ephemeral API, pool processes would each start a server of their own).
A point whose folder in ``models/`` already holds a finished result for the same configuration
and data (same ``config_hash``, which includes the point's recipe,
:mod:`mrirecon.models.recipe`) is reused, not retrained, so a killed run resumes where it
stopped and a grid change trains only the new points; a training with some points finished runs
only to the largest unfinished epoch count and writes only the unfinished points. Each training
travels to its process as a :class:`mrirecon.ops.worker.TrainJob`.
"""

from __future__ import annotations

import os
import shutil

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from mrirecon.config import load_params
from mrirecon.data.storage import write_json
from mrirecon.grid import expand_grid
from mrirecon.models.recipe import recipe_for, training_pixel_mm
from mrirecon.ops import tracking
from mrirecon.ops.project import Layout, find_root
from mrirecon.ops.provenance import file_md5, git_commit
from mrirecon.ops.worker import TrainJob
from mrirecon.stages.train import plan_trainings
from tasks.train import config_hash, finished_point, mark_dead_runs_killed, start_parent_task, train_group_task


def task_runner(workers: int = 1, dask_address: str | None = None):
    """A Prefect task runner: Dask at ``dask_address`` if given, else ``workers`` local slots
    (threads that each drive one training process; see the module docstring)."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=workers)


@flow(name="train")
def train_flow(workers: int | None = None, dask_address: str | None = None) -> dict:
    """Train every grid point under one MLflow parent run (see module docstring)."""
    logger = get_run_logger()
    layout = Layout(find_root())
    params = load_params(layout.params)
    if params.train is None:
        raise ValueError(f"{layout.params}: no train section")
    points = expand_grid(params.train.grid, list(params.masks.intensities))
    tags = {
        "data_version": f"slices:{file_md5(layout.slices)} masks:{file_md5(layout.masks)}",
        "git_commit": git_commit(layout.root),
        "profile": params.profile.name,
        "params_md5": file_md5(layout.params),
    }
    killed = mark_dead_runs_killed(layout.root, params.train.experiment)
    if killed:
        logger.warning("marked %d MLflow runs of dead processes as KILLED: %s", len(killed), ", ".join(killed))
    experiment_id, parent = start_parent_task(
        layout.root,
        params.train.experiment,
        tracking.parent_run_name(tags["profile"], tags["git_commit"]),
        tags,
        {"grid_points": len(points), **{f"grid.{k}": v for k, v in params.train.grid.items()}},
    )
    settings = params.train.settings()
    pixel_mm = training_pixel_mm(layout.slices)
    n_workers = 1 if dask_address else max(1, workers or 1)
    threads = None if dask_address else max(1, (os.cpu_count() or 1) // n_workers)
    results: dict[str, dict] = {}
    todo = []  # the trainings to run, each restricted to its unfinished points
    recipes = {}  # training name -> its recipe (the points of a training share intensity and synthetic phase)
    for group in plan_trainings(points, settings):
        recipe = recipes[group.name] = recipe_for(params, group.final.intensity, group.final.synthetic_phase, pixel_mm)
        unfinished = []
        for point in group.points:
            done = finished_point(layout.root, layout.models, point, settings, tags["data_version"], recipe)
            if done:
                logger.info("%s: already trained (MLflow run %s), reusing", point.name, done["run_id"])
                results[point.name] = done
            else:
                unfinished.append(point)
        if unfinished:
            todo.append(group.subset(unfinished))
    trained = [p for group in todo for p in group.points]
    logger.info(
        "training %d of %d grid points in %d training(s) (%s)",
        len(trained),
        len(points),
        len(todo),
        f"Dask at {dask_address}" if dask_address else f"{n_workers} worker process(es)",
    )
    try:
        jobs = [
            TrainJob(
                group=group,
                settings=settings,
                root=layout.root,
                slices=layout.slices,
                masks=layout.masks,
                models_dir=layout.models,
                experiment_id=experiment_id,
                parent_run_id=parent,
                tags=tags,
                config_hashes=tuple(
                    config_hash(p, settings, tags["data_version"], recipes[group.name]) for p in group.points
                ),
                tracking_uri=tracking.tracking_uri(layout.root),
                threads=threads,
                recipe=recipes[group.name],
            )
            for group in todo
        ]
        futures = [train_group_task.submit(job) for job in jobs]
        for future in futures:
            results.update((result["name"], result) for result in future.result())
    except BaseException:
        tracking.end_run(layout.root, parent, "FAILED")
        raise
    keep = {p.name for p in points} | {"train.json"}
    for stale in layout.models.iterdir() if layout.models.exists() else []:
        if stale.name not in keep:
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
    summary = {
        "experiment_id": experiment_id,
        "parent_run_id": parent,
        **tags,
        "points": [{**p.as_params(), **results[p.name]} for p in points],
    }
    write_json(layout.models / "train.json", summary)
    tracking.log_metrics(
        layout.root,
        parent,
        {
            "points_trained": len(trained),
            "points_reused": len(points) - len(trained),
            "trainings_run": len(todo),
            # a shared training's time is that of its last checkpoint (the earlier ones are part of it)
            "train_wall_time_s": sum(results[group.final.name]["wall_time_s"] for group in todo),
        },
    )
    tracking.set_tags(layout.root, parent, {"child_runs": ",".join(results[p.name]["run_id"] for p in points)})
    tracking.end_run(layout.root, parent, "FINISHED")  # evaluation adds its metrics and reports later
    return summary


def train_flow_for(workers: int, dask_address: str | None):
    """A no-argument callable running :func:`train_flow` on the task runner for
    ``workers`` / ``dask_address``."""
    bound = train_flow.with_options(task_runner=task_runner(workers, dask_address))
    return lambda: bound(workers=workers, dask_address=dask_address)
