"""Data and code versions recorded with every run: file MD5s (as DVC computes them) and git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mrirecon.data.storage import file_digest


def file_md5(path: str | Path) -> str:
    """Hex MD5 of a file's bytes (what DVC stores in ``dvc.lock`` for a file)."""
    return file_digest(path, "md5")


def git_commit(root: str | Path) -> str:
    """``HEAD``'s commit hash, with ``-dirty`` if tracked files changed; ``"unknown"`` outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")
