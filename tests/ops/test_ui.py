"""`mrirecon ui` starts a real Prefect server and the MLflow UI on loopback and stops on Ctrl-C."""

import signal
import subprocess
import time

from conftest import VENV_BIN, make_project_copy, project_env

from mrirecon.ops.services import free_port, is_healthy


def test_ui_serves_both_and_stops_on_ctrl_c(tmp_path):
    project = make_project_copy(tmp_path / "ui")
    prefect_port, mlflow_port = free_port(), free_port()
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
        while not any(line.startswith("MLflow UI:") for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(process.stdout.readline())
        assert f"Prefect UI: http://127.0.0.1:{prefect_port}" in "".join(lines)
        assert is_healthy(f"http://127.0.0.1:{prefect_port}/api/health")
        assert is_healthy(f"http://127.0.0.1:{mlflow_port}/health")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert not is_healthy(f"http://127.0.0.1:{prefect_port}/api/health", timeout_s=1)
        assert not is_healthy(f"http://127.0.0.1:{mlflow_port}/health", timeout_s=1)
    finally:
        if process.poll() is None:
            process.kill()
