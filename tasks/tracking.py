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

PARENT_TAG = "mlflow.parentRunId"


def tracking_uri(root: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` or ``sqlite:///<root>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def client_for(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri(root))


def ensure_experiment(root: Path, name: str) -> str:
    """Id of experiment ``name``, created with artifacts under ``<root>/mlartifacts`` (absolute)."""
    client = client_for(root)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=(root / "mlartifacts").resolve().as_uri())


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
