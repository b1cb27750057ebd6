"""Daily use, end to end on real files (quick profile): resume after kill -9, Dask, the Prefect
server with a scheduled deployment, DVC experiments and a DVC remote, MLflow registry/compare."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import VENV_BIN, make_project_copy, project_env, run_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, real_source):
    """A quick-profile project copy with the data stages done (ingest, select, masks)."""
    project = make_project_copy(tmp_path_factory.mktemp("daily") / "prepared")
    env = project_env(real_source)
    result = run_cli(["mrirecon", "run", "--until", "masks"], project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project, env


def clone(prepared, dest: Path) -> tuple[Path, dict]:
    project, env = prepared
    shutil.copytree(project, dest, symlinks=True, ignore=shutil.ignore_patterns(".prefect"))
    return dest, env


def set_grid(project: Path, **grid) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["grid"].update(grid)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def mlflow_runs(project: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mrirecon")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def test_killed_grid_resumes_without_duplicates(prepared, tmp_path):
    project, env = clone(prepared, tmp_path / "kill")
    set_grid(project, model=["image", "kspace"], intensity=["medium", "high"], epochs=[2])
    process = subprocess.Popen(
        [str(VENV_BIN / "mrirecon"), "train"],
        cwd=project,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = project / "models" / "image-L2-B8-E2-medium" / "result.json"
    deadline = time.monotonic() + 400
    while not first.exists():
        assert process.poll() is None, "train ended before it could be killed"
        assert time.monotonic() < deadline, "first grid point never finished"
        time.sleep(0.5)
    time.sleep(8)  # the second grid point is training now
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    first_run = json.loads(first.read_text())["run_id"]
    _, runs = mlflow_runs(project)
    assert any(r.info.status == "RUNNING" for r in runs)  # left behind by the kill

    result = run_cli(["mrirecon", "train"], project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "already trained" in result.stdout + result.stderr
    summary = json.loads((project / "models" / "train.json").read_text())
    names = [p["name"] for p in summary["points"]]
    assert len(names) == 4
    assert summary["points"][0]["run_id"] == first_run  # reused, not retrained
    _, runs = mlflow_runs(project)
    finished = [r.data.tags["grid_point"] for r in runs if r.info.status == "FINISHED" and "grid_point" in r.data.tags]
    assert sorted(finished) == sorted(names)  # each grid point exactly once FINISHED
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert any(r.info.status == "KILLED" for r in runs)


def test_grid_runs_on_a_dask_cluster(prepared, tmp_path):
    import dask
    from distributed import LocalCluster

    project, env = clone(prepared, tmp_path / "dask")
    with dask.config.set({"distributed.worker.daemon": False}):
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster:
            result = run_cli(["mrirecon", "train", "--dask-address", cluster.scheduler_address], project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Dask at tcp://127.0.0.1" in result.stdout + result.stderr
    summary = json.loads((project / "models" / "train.json").read_text())
    assert len(summary["points"]) == 2
    _, runs = mlflow_runs(project)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == summary["parent_run_id"]]
    assert sorted(r.info.status for r in children) == ["FINISHED", "FINISHED"]


def _api(base: str, path: str, body: dict | None = None) -> dict | list:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body or {}).encode(),
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def test_scheduled_deployment_on_a_real_prefect_server(prepared, tmp_path):
    from mrirecon.ops.services import free_port, start_prefect_server, stop, wait_healthy

    project, env = clone(prepared, tmp_path / "serve")
    port = free_port()
    server_env = {**env, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    server = start_prefect_server("127.0.0.1", port, env=server_env, log=tmp_path / "server.log")
    serve = None
    try:
        wait_healthy([server], timeout_s=120)
        api = f"http://127.0.0.1:{port}/api"
        serve_env = {**env, "PREFECT_API_URL": api}
        serve = subprocess.Popen(
            [str(VENV_BIN / "mrirecon"), "serve", "--cron", "*/30 * * * *"],
            cwd=project,
            env=serve_env,
            start_new_session=True,
            stdout=open(tmp_path / "serve.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        deployments = []
        while not deployments:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "deployment never registered"
            time.sleep(1)
            deployments = _api(api, "/deployments/filter", {"deployments": {"name": {"any_": ["scheduled"]}}})
        deployment = deployments[0]
        schedules = [s["schedule"].get("cron") for s in deployment["schedules"]]
        assert schedules == ["*/30 * * * *"]
        run = _api(api, f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"until": "masks"}})
        deadline = time.monotonic() + 240
        state = None
        while state not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            assert time.monotonic() < deadline, f"triggered run stuck in {state}"
            time.sleep(2)
            state = _api(api, f"/flow_runs/{run['id']}")["state"]["type"]
        assert state == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        if serve and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            serve.wait(timeout=30)
        stop([server])


def test_dvc_experiments_remote_registry_and_compare(prepared, tmp_path):
    project, env = clone(prepared, tmp_path / "exp")
    subprocess.run(["git", "add", "-A"], cwd=project, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "data stages"], cwd=project, env=env, check=True)
    # the quick profile registers no models unless asked to, as here
    result = run_cli(
        ["dvc", "exp", "run", "-S", "train.grid.epochs=[1]", "-S", "profile.register_models=true"], project, env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the DVC metrics are the headline numbers of reports/summary/<intensity>.json (one intensity here)
    columns = run_cli(["dvc", "exp", "show", "--csv"], project, env).stdout.splitlines()[0].split(",")
    assert {"zero_filled_psnr", "cs_psnr", "best_psnr", "best_ssim"} <= set(columns)

    # the best model per intensity is registered and is the champion
    client, runs = mlflow_runs(project)
    versions = client.search_model_versions("name = 'mrirecon-medium'")
    assert len(versions) == 1
    assert client.get_model_version_by_alias("mrirecon-medium", "champion").version == versions[0].version

    compared = run_cli(["mrirecon", "compare", "--metric", "test_psnr"], project, env)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "(profile quick)" in compared.stdout
    assert "sorted by test_psnr" in compared.stdout and (project / "reports" / "compare_test_psnr.png").exists()

    # DVC remote: push, then pull into a fresh clone restores data/
    remote = tmp_path / "remote"
    assert run_cli(["dvc", "remote", "add", "-d", "local", str(remote)], project, env).returncode == 0
    pushed = run_cli(["dvc", "push"], project, env)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    subprocess.run(["git", "add", "-A"], cwd=project, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "remote"], cwd=project, env=env, check=True)
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(project), str(fresh)], env=env, check=True)
    pulled = run_cli(["dvc", "pull"], fresh, env)
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    for rel in ("data/interim/volumes.parquet", "data/processed/slices.parquet", "data/processed/masks.parquet"):
        assert (fresh / rel).read_bytes() == (project / rel).read_bytes()
