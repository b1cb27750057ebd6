"""Train one grid point in a fresh process and log it as an MLflow child run.

Run through :func:`run_in_fresh_process`: each grid point gets a new (spawned) Python
process, so TensorFlow/Keras memory is returned to the OS when the point finishes and
peak memory stays flat however large the grid.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path


def run_in_fresh_process(job: dict) -> dict:
    """Run :func:`train_job` in a new spawned process and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(train_job, job).result()


def train_job(job: dict) -> dict:
    """Train, save and log one grid point.

    Args:
        job: ``root``, ``point`` (GridPoint fields), ``settings`` (ModelSettings fields),
            ``experiment_id``, ``parent_run_id``, ``tags``, ``slices``, ``masks``,
            ``models_dir``.

    Returns:
        ``{"name", "run_id", "val_mse", "wall_time_s", "epochs_run", "stopped_early",
        "peak_rss_mb", "model_dir"}``.
    """
    from mrirecon.project import configure_environment

    root = Path(job["root"])
    if job.get("tracking_uri"):
        os.environ["MLFLOW_TRACKING_URI"] = job["tracking_uri"]  # long-lived Dask workers serve many projects
    configure_environment(root)
    if job.get("threads"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(job["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(min(2, job["threads"]))
    from mrirecon.datasets import load_slice_set
    from mrirecon.grid import GridPoint
    from mrirecon.storage import write_json
    from mrirecon.training import ModelSettings, train_point
    from tasks import tracking

    point = GridPoint(**job["point"])
    settings = ModelSettings(**job["settings"])
    run_id = tracking.start_run(
        root, job["experiment_id"], point.name,
        {**job["tags"], "grid_point": point.name, "config_hash": job.get("config_hash", ""),
         "host": socket.gethostname(), "pid": str(os.getpid())},
        job["parent_run_id"],
    )
    try:
        tracking.log_params(root, run_id, {**point.as_params(), **asdict(settings)})
        train = load_slice_set(job["slices"], job["masks"], point.intensity, "train")
        val = load_slice_set(job["slices"], job["masks"], point.intensity, "val")
        tracking.log_params(root, run_id, {"train_slices": len(train), "val_slices": len(val), "acceleration": train.acceleration})

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            tracking.log_metrics(root, run_id, {k: logs[k] for k in ("loss", "val_loss") if k in logs}, step=epoch)
            print(f"[{point.name}] epoch {epoch}/{point.epochs} "
                  + " ".join(f"{k}={v:.5g}" for k, v in logs.items()), flush=True)

        result = train_point(point, train, val, settings, on_epoch, verbose=0)
        out = Path(job["models_dir"]) / point.name
        tmp = out.with_name(f".{point.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        result.model.save_weights(tmp / "model.weights.h5")
        write_json(tmp / "spec.json", {"point": point.as_params(), "settings": asdict(settings),
                                      "size": int(train.images.shape[-1]), "run_id": run_id})
        write_json(tmp / "history.json", result.history)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        summary = {
            "val_mse": result.val_mse, "wall_time_s": result.wall_time_s,
            "epochs_run": result.epochs_run, "peak_rss_mb": peak_rss_mb,
        }
        tracking.log_metrics(root, run_id, summary)
        tracking.set_tags(root, run_id, {"stopped_early": result.stopped_early})
        tracking.client_for(root).log_artifacts(run_id, str(tmp), "model")
        outcome = {"name": point.name, "run_id": run_id, "stopped_early": result.stopped_early,
                   "model_dir": str(out.relative_to(root)), "config_hash": job.get("config_hash", ""), **summary}
        write_json(tmp / "result.json", outcome)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)  # the point counts as done only once this rename happened
        tracking.end_run(root, run_id, "FINISHED")
    except BaseException:
        tracking.end_run(root, run_id, "FAILED")
        raise
    return outcome
