"""Local Prefect and MLflow servers as child processes (loopback by default), with health checks.

Used by ``mrirecon ui``. Only subprocess and HTTP plumbing: no Prefect or MLflow imports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class Service:
    """A started server: its name, base URL, health URL and process."""

    name: str
    url: str
    health_url: str
    process: subprocess.Popen


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def is_healthy(url: str, timeout_s: float = 2.0) -> bool:
    """True if GET ``url`` answers HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except OSError:
        return False


def start_prefect_server(host: str, port: int, env: dict[str, str] | None = None, log: Path | None = None) -> Service:
    """Start ``prefect server start`` on ``host:port`` (API at ``/api``, UI at ``/``).

    The UI is told where its API is (``PREFECT_SERVER_UI_API_URL``, what ``/ui-settings`` answers as
    ``api_url``): left alone, Prefect derives it from ``PREFECT_API_URL`` or its default port 4200, and the UI on
    any other port shows "Can't connect to Server API". A wildcard ``host`` (``0.0.0.0``, ``::``) is
    advertised as this machine's host name.
    """
    cmd = [str(BIN / "prefect"), "server", "start", "--host", host, "--port", str(port)]
    url = f"http://{host}:{port}"
    public = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    env = {**(env or os.environ), "PREFECT_SERVER_UI_API_URL": f"http://{public}:{port}/api"}
    return Service("Prefect", url, f"{url}/api/health", _popen(cmd, env, log))


def start_mlflow_server(
    host: str, port: int, backend_uri: str, env: dict[str, str] | None = None, log: Path | None = None
) -> Service:
    """Start ``mlflow server`` on ``host:port`` over ``backend_uri`` (job execution disabled)."""
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**(env or os.environ), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    url = f"http://{host}:{port}"
    return Service("MLflow", url, f"{url}/health", _popen(cmd, env, log))


def _popen(cmd: list[str], env: dict[str, str] | None, log: Path | None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(services: list[Service], timeout_s: float = 120.0) -> None:
    """Block until every service answers its health URL.

    Raises:
        RuntimeError: a process exited, or ``timeout_s`` seconds passed.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(services)
    while pending:
        for service in list(pending):
            if service.process.poll() is not None:
                raise RuntimeError(f"{service.name} server exited with code {service.process.returncode}")
            if is_healthy(service.health_url):
                pending.remove(service)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{', '.join(s.name for s in pending)} not healthy after {timeout_s:.0f} s")
        if pending:
            time.sleep(0.5)


def stop(services: list[Service], grace_s: float = 15.0) -> None:
    """SIGTERM each server's process group, then SIGKILL what is left after ``grace_s``."""
    for service in services:
        if service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for service in services:
        try:
            service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()
