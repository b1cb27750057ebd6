"""Shared fixtures and helpers: the real IXI source, temp copies of the project, running the CLI in them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

HOW_TO_GET_DATA = (
    "end-to-end tests need the real IXI T1 files: set MRIRECON_SOURCE to the absolute path of a "
    "directory of IXI *T1.nii.gz files (here: ../shared/data/ixi-t1-2mm), or cache the sample "
    "under data/raw/ixi-t1-2mm with `mrirecon ingest --source sample`"
)


@pytest.fixture(scope="session")
def real_source() -> Path:
    """Absolute path of the real IXI T1 files; fails (never skips) if there are none."""
    env = os.environ.get("MRIRECON_SOURCE")
    if env and Path(env).is_dir():
        return Path(env).resolve()
    cached = ROOT / "data" / "raw" / "ixi-t1-2mm"
    if cached.is_dir() and any(cached.glob("IXI*T1.nii.gz")):
        return cached.resolve()
    pytest.fail(HOW_TO_GET_DATA)


def project_files() -> list[str]:
    """Files of the project as git sees them (tracked + untracked, not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def make_project_copy(dest: Path, profile: str = "params-quick.yaml") -> Path:
    """Copy the project to ``dest`` as a fresh git repo, with ``profile`` as params.yaml."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    if profile != "params.yaml":
        shutil.copy2(ROOT / profile, dest / "params.yaml")
    (dest / "dvc.lock").unlink(missing_ok=True)
    env = git_env()
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True, env=env)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "test copy"], cwd=dest, check=True, env=env)
    return dest


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
    )
    return env


def project_env(source: Path | None = None, **extra: str) -> dict[str, str]:
    """Environment for running the CLI / DVC in a project copy (venv first on PATH)."""
    env = git_env()
    for key in ("MRIRECON_PROJECT", "PREFECT_HOME", "PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MRIRECON_SOURCE"):
        env.pop(key, None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    if source is not None:
        env["MRIRECON_SOURCE"] = str(source)
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command in ``cwd`` and return the completed process (output captured as text)."""
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """A real, temporary Prefect API (``prefect_test_harness``: its own SQLite database and server process)."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def mlflow_store(tmp_path):
    """An MLflow SQLite store in ``tmp_path``; the process environment is restored afterwards
    (the worker sets tracking and Prefect variables)."""
    saved = dict(os.environ)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    yield os.environ["MLFLOW_TRACKING_URI"]
    os.environ.clear()
    os.environ.update(saved)
