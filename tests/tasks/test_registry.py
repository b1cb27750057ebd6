"""Model registry on a real MLflow SQLite store: which profiles register, and when a version becomes champion."""

import pytest
from mlflow.tracking import MlflowClient
from prefect.logging import disable_run_logger

from mrirecon.config import ProfileParams
from mrirecon.ops import tracking
from tasks.registry import CHAMPION, register_best_task

DATA_A = "slices:aaaa masks:aaaa"
DATA_B = "slices:bbbb masks:bbbb"


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return tmp_path, MlflowClient(uri), tracking.ensure_experiment(tmp_path, "mrirecon")


def _trained(store, data_version: str) -> str:
    root, client, experiment_id = store
    run_id = tracking.start_run(
        root, experiment_id, "image-l2", {"grid_point": "image-l2", "data_version": data_version}
    )
    weights = root / "model.txt"
    weights.write_text("weights")
    client.log_artifact(run_id, str(weights), "model")
    tracking.end_run(root, run_id)
    return run_id


def _report(run_id: str, val_mse: float) -> dict:
    best = {"run_id": run_id, "val_mse": val_mse, "psnr": 30.0, "ssim": 0.9, "name": "image-l2"}
    return {"medium": {"acceleration": 4.0, "best": best}}


def _register(store, report, profile):
    with disable_run_logger():
        return register_best_task.fn(store[0], report, profile)


def test_a_quick_profile_registers_nothing(store):
    run_id = _trained(store, DATA_A)
    assert _register(store, _report(run_id, 0.01), ProfileParams(name="quick", register_models=False)) == {}
    assert store[1].search_registered_models() == []


def test_champion_by_validation_mse_within_a_data_version_newest_data_wins(store):
    client = store[1]
    default = ProfileParams()
    first = _register(store, _report(_trained(store, DATA_A), 0.010), default)
    assert first == {"medium": {"name": "mrirecon-medium", "version": "1", "champion": True}}
    # same data, worse validation MSE: registered, not champion
    worse = _register(store, _report(_trained(store, DATA_A), 0.020), default)
    assert worse["medium"] == {"name": "mrirecon-medium", "version": "2", "champion": False}
    assert str(client.get_model_version_by_alias("mrirecon-medium", CHAMPION).version) == "1"
    # other data: the validation MSEs are on other subjects, so the newest data's best becomes champion
    other = _register(store, _report(_trained(store, DATA_B), 0.030), ProfileParams(name="quality"))
    assert other["medium"] == {"name": "mrirecon-medium", "version": "3", "champion": True}
    champion = client.get_model_version_by_alias("mrirecon-medium", CHAMPION)
    assert (str(champion.version), champion.tags["profile"], champion.tags["data_version"]) == ("3", "quality", DATA_B)
