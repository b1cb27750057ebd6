"""MLflow bookkeeping (SQLite store, explicit run ids): experiment, parent and child runs.

Everything goes through :class:`mlflow.tracking.MlflowClient` with explicit run ids, never
the per-thread "active run", so worker processes and threads log to the right run. The
parent/child link is the ``mlflow.parentRunId`` tag, set from the ``parent_run_id`` passed in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mrirecon.grid import REQUIRED_AXES
from mrirecon.ops.project import store_root

PARENT_TAG = "mlflow.parentRunId"


def tracking_uri(root: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` or ``sqlite:///<store root>/mlflow.db`` (see
    :func:`mrirecon.ops.project.store_root`: queued DVC experiments log to the parent repo)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_root(root) / 'mlflow.db'}"


def client_for(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri(root))


def ensure_experiment(root: Path, name: str) -> str:
    """Id of experiment ``name``, created with artifacts under ``<root>/mlartifacts`` (absolute)."""
    client = client_for(root)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=(store_root(root) / "mlartifacts").as_uri())


def start_run(root: Path, experiment_id: str, name: str, tags: dict[str, str], parent_run_id: str | None = None) -> str:
    """Create a run (a child of ``parent_run_id`` if given) and return its id."""
    all_tags = dict(tags)
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    run = client_for(root).create_run(experiment_id, run_name=name, tags=all_tags)
    return run.info.run_id


def log_params(root: Path, run_id: str, params: dict) -> None:
    client_for(root).log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_metrics(root: Path, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    now = int(time.time() * 1000)
    client_for(root).log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])


def set_tags(root: Path, run_id: str, tags: dict[str, str]) -> None:
    client_for(root).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def end_run(root: Path, run_id: str, status: str = "FINISHED") -> None:
    client_for(root).set_terminated(run_id, status)


def child_runs_table(root: Path, experiment: str) -> list[dict]:
    """Every finished grid-point run of ``experiment`` (all days) as flat dicts: run id, start
    time, grid params, ``val_mse`` and ``test_*`` metrics, data version.

    Raises:
        ValueError: if the experiment does not exist.
    """
    client = client_for(root)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"no MLflow experiment {experiment!r} in {tracking_uri(root)}")
    rows = []
    for run in client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'", max_results=5000):
        if "grid_point" not in run.data.tags:
            continue
        rows.append(
            {
                "run_id": run.info.run_id,
                "start": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.info.start_time / 1000)),
                **{k: run.data.params.get(k) for k in REQUIRED_AXES},
                **{k: v for k, v in run.data.metrics.items() if k == "val_mse" or k.startswith("test_")},
                "data_version": run.data.tags.get("data_version", ""),
            }
        )
    return rows
