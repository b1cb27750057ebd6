"""`mrirecon compare` on a real MLflow SQLite store: profile and data version shown, data versions never
ranked together."""

import shutil
import time
from pathlib import Path

from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from mrirecon.cli import app
from mrirecon.ops import tracking

ROOT = Path(__file__).resolve().parents[2]
OLD = "slices:aaaaaaaaaaaaaaaa masks:bbbbbbbbbbbbbbbb"
NEW = "slices:cccccccccccccccc masks:dddddddddddddddd"


def _child(client, experiment_id, start_ms, profile, data_version, psnr, layers):
    run = client.create_run(
        experiment_id,
        start_time=start_ms,
        tags={"grid_point": f"p{layers}", "profile": profile, "data_version": data_version},
    )
    run_id = run.info.run_id
    for key, value in {"model": "image", "layers": layers, "batch_size": 8, "epochs": 2, "intensity": "medium"}.items():
        client.log_param(run_id, key, value)
    client.log_metric(run_id, "test_psnr", psnr)
    client.log_metric(run_id, "val_mse", 1.0 / psnr)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def test_compare_ranks_each_data_version_separately_and_shows_profile(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MRIRECON_PROJECT", str(project))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    client = MlflowClient(uri)
    experiment_id = tracking.ensure_experiment(project, "mrirecon")
    now = int(time.time() * 1000)
    day = 86_400_000
    # an old quick run on other (easier) test subjects scores higher than every default run
    _child(client, experiment_id, now - 3 * day, "quick", OLD, 40.25, 2)
    _child(client, experiment_id, now - day, "default", NEW, 31.25, 2)
    _child(client, experiment_id, now, "default", NEW, 33.25, 3)

    result = CliRunner().invoke(app, ["compare", "--metric", "test_psnr"])
    assert result.exit_code == 0, result.output
    out = result.output
    new_title = out.index("data slices:cccccccc masks:dddddddd (profile default): 2 runs sorted by test_psnr")
    old_title = out.index("data slices:aaaaaaaa masks:bbbbbbbb (profile quick): 1 runs sorted by test_psnr")
    assert new_title < old_title  # newest data version first
    newest = out[new_title:old_title]
    # the values as printed (.4g); a "." never occurs in a run id, so these match only the metric cells
    assert newest.index("33.25") < newest.index("31.25") and "40.25" not in newest and "quick" not in newest
    assert "40.25" in out[old_title:] and "quick" in out[old_title:]
    assert "note: 2 data versions, ranked separately" in out
    assert (project / "reports" / "compare_test_psnr.png").stat().st_size > 0

    only_default = CliRunner().invoke(app, ["compare", "--profile", "default"])
    assert only_default.exit_code == 0, only_default.output
    assert "quick" not in only_default.output and "note:" not in only_default.output
