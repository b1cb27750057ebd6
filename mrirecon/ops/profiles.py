"""Run with a params profile (``params-<name>.yaml``) without leaving the user's ``params.yaml`` changed.

DVC reads a stage's parameters from ``params.yaml`` only (``dvc status``, ``dvc commit``), so during the run the
profile *is* ``params.yaml``: the stages run with it and ``dvc.lock`` records the profile's values beside the
outputs they produced. Afterwards the user's file is put back byte for byte, so ``dvc status`` then reports the
stages that read a changed section as stale against the user's parameters (``dvc repro`` would bring the outputs
back in line with them), which is what happened. The user's file is kept in :data:`BACKUP` while the profile is
active; a run killed in between (``kill -9``) leaves it there and the next :func:`profile_params` restores it first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mrirecon.data.storage import atomic_path

#: The user's ``params.yaml`` while a profile is active (project root).
BACKUP = ".params.yaml.before-profile"


def profile_path(root: Path, profile: str) -> Path:
    """``params-<profile>.yaml`` under ``root``.

    Raises:
        FileNotFoundError: if it does not exist.
    """
    path = root / f"params-{profile}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"profile {profile!r}: {path} not found")
    return path


def restore_params(root: Path) -> bool:
    """Put the user's ``params.yaml`` back from :data:`BACKUP` if a profile run left it; True if it did."""
    backup = root / BACKUP
    if not backup.exists():
        return False
    os.replace(backup, root / "params.yaml")
    return True


@contextmanager
def profile_params(root: Path, profile: str | None) -> Iterator[Path]:
    """Make ``params-<profile>.yaml`` the project's ``params.yaml`` inside the block, and the user's file again
    afterwards, also on error (see module docstring). None, ``""`` or ``"default"``: nothing changes.

    Yields:
        the active ``params.yaml``.

    Raises:
        FileNotFoundError: if the profile's file does not exist.
    """
    params = root / "params.yaml"
    restore_params(root)  # a profile run killed before it could restore
    if profile in (None, "", "default"):
        yield params
        return
    wanted = profile_path(root, profile).read_bytes()
    original = params.read_bytes()
    if wanted == original:
        yield params
        return
    with atomic_path(root / BACKUP) as tmp:
        tmp.write_bytes(original)
    try:
        with atomic_path(params) as tmp:
            tmp.write_bytes(wanted)
        yield params
    finally:
        restore_params(root)
