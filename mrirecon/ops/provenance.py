"""Data and code versions recorded with every run: file MD5s (as DVC computes them) and git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from mrirecon.data.storage import file_digest

#: Tracked files a run itself rewrites, which therefore do not make its code ``-dirty``: DVC's lock file and the
#: active params file (``mrirecon run --profile`` copies a profile over it; its values are on the run anyway:
#: the ``profile`` and ``params_md5`` tags, the logged params, the data version). Outputs declared in
#: ``dvc.yaml`` are left out too (:func:`dvc_outputs`).
RUN_WRITTEN = ("dvc.lock", "params.yaml")


def file_md5(path: str | Path) -> str:
    """Hex MD5 of a file's bytes (what DVC stores in ``dvc.lock`` for a file)."""
    return file_digest(path, "md5")


def dvc_outputs(root: str | Path) -> list[str]:
    """Paths (relative to ``root``) of every ``outs``, ``metrics`` and ``plots`` entry of ``root/dvc.yaml``'s
    stages; empty if the file is missing or not a mapping."""
    try:
        document = yaml.safe_load((Path(root) / "dvc.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    paths = []
    stages = document.get("stages", {}) if isinstance(document, dict) else {}
    for stage in stages.values() if isinstance(stages, dict) else []:
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []) if isinstance(stage, dict) else []:
                paths += [entry] if isinstance(entry, str) else list(entry) if isinstance(entry, dict) else []
    return paths


def git_commit(root: str | Path) -> str:
    """``HEAD``'s commit hash, with ``-dirty`` if tracked source files differ from it (staged or not);
    ``"unknown"`` outside git.

    Files the run writes itself (:data:`RUN_WRITTEN`, :func:`dvc_outputs`) do not count, so the tag says
    which code ran, not what the run left behind. Untracked files do not count either.
    """
    excluded = [f":(exclude){path}" for path in (*RUN_WRITTEN, *dvc_outputs(root))]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")
