"""MLflow bookkeeping (SQLite store, explicit run ids): experiment, parent and child runs.

Everything goes through :class:`mlflow.tracking.MlflowClient` with explicit run ids, never
the per-thread "active run", so worker processes and threads log to the right run. The
parent/child link is the ``mlflow.parentRunId`` tag, set from the ``parent_run_id`` passed in.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mrirecon.grid import REQUIRED_AXES
from mrirecon.ops.project import store_root

PARENT_TAG = "mlflow.parentRunId"
#: MLflow 3's experiment kind (the values of the UI's kind selector): this is model training, not a GenAI app.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
#: A saved runs-table view (MLflow UI "shared view state": experiment tag ``mlflow.sharedViewState.<key>``,
#: opened with ``?viewStateShareKey=<key>``); see :func:`experiment_url`.
VIEW_KEY = "mrirecon"
VIEW_METRICS = ("test_psnr", "test_ssim", "val_mse")
VIEW_TAGS = ("profile",)


def runs_view() -> dict:
    """The runs table view: the grid axes, ``VIEW_METRICS`` and the ``profile`` tag as columns, sorted by
    test PSNR (column ids as the MLflow UI writes them: ``metrics.`name```)."""
    columns = [f"params.`{k}`" for k in REQUIRED_AXES]
    columns += [f"metrics.`{k}`" for k in VIEW_METRICS] + [f"tags.`{k}`" for k in VIEW_TAGS]
    return {"selectedColumns": columns, "orderByKey": "metrics.`test_psnr`", "orderByAsc": False}


def tracking_uri(root: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` or ``sqlite:///<store root>/mlflow.db`` (see
    :func:`mrirecon.ops.project.store_root`: queued DVC experiments log to the parent repo)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_root(root) / 'mlflow.db'}"


def client_for(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri(root))


def ensure_experiment(root: Path, name: str) -> str:
    """Id of experiment ``name``, created with artifacts under ``<root>/mlartifacts`` (absolute).

    New and existing experiments get the :data:`EXPERIMENT_KIND` tag (the MLflow UI then offers runs, not
    GenAI traces and evaluations) and the saved runs-table view :func:`runs_view`.
    """
    client = client_for(root)
    tags = {EXPERIMENT_KIND[0]: EXPERIMENT_KIND[1], f"mlflow.sharedViewState.{VIEW_KEY}": json.dumps(runs_view())}
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=(store_root(root) / "mlartifacts").as_uri(), tags=tags)
    for key, value in tags.items():
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def experiment_url(ui_url: str, experiment_id: str) -> str:
    """Link to an experiment's runs table in the MLflow UI at ``ui_url``, in model-training mode with the
    saved view of :func:`runs_view`.

    MLflow 3.17's UI takes the mode from a browser-wide "workflow type" switch (default GenAI, kept in local
    storage), not from :data:`EXPERIMENT_KIND`; the ``workflowType`` query parameter overrides it.
    """
    return f"{ui_url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"


def parent_run_name(profile: str, commit: str, when: float | None = None) -> str:
    """A parent run's readable name: ``<profile> <YYYY-MM-DD HH:MM> <short commit>``, e.g.
    ``default 2026-12-01 19:05 d23a8d1`` (local time; ``commit`` as :func:`~mrirecon.ops.provenance.git_commit`
    gives it, a ``-dirty`` suffix kept)."""
    head, dirty, _ = commit.partition("-dirty")
    short = head[:7] + ("-dirty" if dirty else "")
    return f"{profile} {time.strftime('%Y-%m-%d %H:%M', time.localtime(when))} {short}"


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
    time, grid params, ``val_mse`` and ``test_*`` metrics, profile and data version.

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
                "profile": run.data.tags.get("profile", ""),
                "data_version": run.data.tags.get("data_version", ""),
            }
        )
    return rows


def group_by_data_version(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """``rows`` of :func:`child_runs_table` grouped by ``data_version`` (runs on different data were tested on
    different subjects, so their test metrics must not be ranked together), the group with the newest run
    first; rows keep their order within a group."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row.get("data_version", ""), []).append(row)
    return sorted(groups.items(), key=lambda item: max(r["start"] for r in item[1]), reverse=True)


def short_data_version(data_version: str) -> str:
    """``slices:<md5> masks:<md5>`` shortened to 8 hex digits per file (``"unknown"`` if empty)."""
    if not data_version:
        return "unknown"
    return " ".join(
        f"{name}:{digest[:8]}" for name, _, digest in (part.partition(":") for part in data_version.split())
    )
