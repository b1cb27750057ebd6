"""`mrirecon ui` starts a real Prefect server and the MLflow UI on loopback, on any ports, and stops on Ctrl-C."""

import json
import signal
import subprocess
import time
import urllib.request

from conftest import VENV_BIN, make_project_copy, project_env
from mlflow.tracking import MlflowClient

from mrirecon.ops.services import free_port, is_healthy
from mrirecon.ops.tracking import EXPERIMENT_KIND


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_ui_serves_both_on_chosen_ports_and_stops_on_ctrl_c(tmp_path):
    project = make_project_copy(tmp_path / "ui")
    prefect_port, mlflow_port = free_port(), free_port()
    assert 4200 not in (prefect_port, mlflow_port)
    process = subprocess.Popen(
        [str(VENV_BIN / "mrirecon"), "ui", "--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port)],
        cwd=project,
        env=project_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 180
        while not any(line.startswith("MLflow runs of") for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(process.stdout.readline())
        assert f"Prefect UI: http://127.0.0.1:{prefect_port}" in "".join(lines)
        assert is_healthy(f"http://127.0.0.1:{prefect_port}/api/health")
        assert is_healthy(f"http://127.0.0.1:{mlflow_port}/health")
        # the Prefect UI is told its API is on the chosen port (not the default 4200)
        status, body = _get(f"http://127.0.0.1:{prefect_port}/ui-settings")
        assert status == 200 and json.loads(body)["api_url"] == f"http://127.0.0.1:{prefect_port}/api"
        status, body = _get(f"http://127.0.0.1:{mlflow_port}/")
        assert status == 200 and "<title>MLflow</title>" in body
        # the experiment exists before any run, in model-training mode, and the printed link opens its runs
        experiment = MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_experiment_by_name("mrirecon")
        assert experiment.tags[EXPERIMENT_KIND[0]] == "custom_model_development"
        link = f"http://127.0.0.1:{mlflow_port}/#/experiments/{experiment.experiment_id}/runs?workflowType="
        assert link in lines[-1]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert not is_healthy(f"http://127.0.0.1:{prefect_port}/api/health", timeout_s=1)
        assert not is_healthy(f"http://127.0.0.1:{mlflow_port}/health", timeout_s=1)
    finally:
        if process.poll() is None:
            process.kill()
