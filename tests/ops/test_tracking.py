"""MLflow bookkeeping on a real SQLite store: experiment kind and saved view, parent run names, grouping."""

import json
import time

import pytest
from mlflow.tracking import MlflowClient

from mrirecon.ops import tracking


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return tmp_path, MlflowClient(uri)


def test_new_and_existing_experiments_get_the_training_kind_and_the_runs_view(store):
    root, client = store
    new_id = tracking.ensure_experiment(root, "fresh")
    old_id = client.create_experiment("old")  # made before this rule, without tags
    assert tracking.ensure_experiment(root, "old") == old_id
    for experiment_id in (new_id, old_id):
        tags = client.get_experiment(experiment_id).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        view = json.loads(tags["mlflow.sharedViewState.mrirecon"])
        assert view["orderByKey"] == "metrics.`test_psnr`" and view["orderByAsc"] is False
        assert {"params.`model`", "params.`layers`", "params.`intensity`"} <= set(view["selectedColumns"])
        assert {"metrics.`test_psnr`", "metrics.`test_ssim`", "metrics.`val_mse`"} <= set(view["selectedColumns"])
    assert tracking.experiment_url("http://127.0.0.1:5001", old_id) == (
        f"http://127.0.0.1:5001/#/experiments/{old_id}/runs?workflowType=machine_learning&viewStateShareKey=mrirecon"
    )


def test_parent_run_name_has_profile_local_time_and_short_commit():
    when = time.mktime((2026, 12, 1, 19, 5, 30, 0, 0, -1))
    commit = "d23a8d1e0f4c9b2a7d6e5f4c3b2a1d0e9f8c7b6a"
    assert tracking.parent_run_name("default", commit, when) == "default 2026-12-01 19:05 d23a8d1"
    assert tracking.parent_run_name("quick", commit + "-dirty", when) == "quick 2026-12-01 19:05 d23a8d1-dirty"
    assert tracking.parent_run_name("quick", "unknown", when) == "quick 2026-12-01 19:05 unknown"


def test_rows_are_grouped_by_data_version_newest_first():
    rows = [
        {"run_id": "a", "start": "2026-01-01 10:00", "data_version": "slices:1 masks:1"},
        {"run_id": "b", "start": "2026-02-01 10:00", "data_version": "slices:2 masks:2"},
        {"run_id": "c", "start": "2026-01-02 10:00", "data_version": "slices:1 masks:1"},
    ]
    groups = tracking.group_by_data_version(rows)
    assert [(v, [r["run_id"] for r in g]) for v, g in groups] == [
        ("slices:2 masks:2", ["b"]),
        ("slices:1 masks:1", ["a", "c"]),
    ]
    assert tracking.short_data_version("slices:0123456789abcdef masks:fedcba9876543210") == (
        "slices:01234567 masks:fedcba98"
    )
    assert tracking.short_data_version("") == "unknown"
