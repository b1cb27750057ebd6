"""Prefect tasks that keep DVC's record (``dvc.lock``) in step when stages run outside ``dvc repro``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


@task(name="dvc-status", cache_policy=NO_CACHE)
def stage_is_current(root: Path, stage: str) -> bool:
    """True if DVC says ``stage``'s deps, params and outs match ``dvc.lock``."""
    result = _dvc(root, "status", "--quiet", stage)
    return result.returncode == 0


@task(name="dvc-commit", cache_policy=NO_CACHE)
def commit_stage(root: Path, stage: str) -> None:
    """Record ``stage``'s current deps, params and outs in ``dvc.lock`` (``dvc commit --force``).

    Raises:
        RuntimeError: with DVC's message if the commit fails.
    """
    result = _dvc(root, "commit", "--force", stage)
    if result.returncode != 0:
        raise RuntimeError(f"dvc commit {stage} failed: {result.stderr.strip() or result.stdout.strip()}")
    get_run_logger().info("dvc.lock updated for stage %s", stage)
