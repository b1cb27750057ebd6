"""One mrirecon run per project at a time: an exclusive ``flock`` on ``<root>/.mrirecon.lock``.

Two runs in the same project would overwrite each other's outputs (``data/``, ``models/``,
``dvc.lock``, MLflow runs). :func:`project_lock` takes an exclusive, non-blocking
``fcntl.flock`` on the lock file; a second run fails at once with :class:`RunLocked`,
whose message names the holder (pid, start time, what it runs) as written into the file.

The kernel releases a ``flock`` when the holder's file descriptor closes, so the lock goes
away when the holder exits for any reason, SIGKILL included; no stale lock is ever left
to clean up by hand. The file itself is kept (deleting it would let two processes lock two
different files of the same name); its text only describes the last holder.

Limits: ``flock`` locks are per host; on a network file system shared by several machines
(NFS) they may not be seen by the other machines. The lock is re-entrant within one
process (a nested :func:`project_lock` on the same root just passes), and it is not
inherited by child processes started with ``exec`` (the descriptor is close-on-exec).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".mrirecon.lock"

# Locks this process holds: resolved root -> (pid, depth). The pid guards against a child
# created by fork() believing it holds its parent's lock.
_HELD: dict[Path, tuple[int, int]] = {}


class RunLocked(RuntimeError):
    """Another mrirecon run holds the project lock.

    Attributes:
        root: the project root.
        holder: what the holder wrote into the lock file (``pid``, ``started``, ``what``),
            empty when it could not be read.
    """

    def __init__(self, message: str, root: Path, holder: dict):
        super().__init__(message)
        self.root = root
        self.holder = holder


def lock_path(root: str | os.PathLike) -> Path:
    """Path of the lock file of the project at ``root``: ``<root>/.mrirecon.lock``."""
    return Path(root) / LOCK_NAME


def read_holder(root: str | os.PathLike) -> dict:
    """What the current (or last) holder wrote into the lock file.

    Returns:
        ``{"pid": int, "started": str (ISO 8601, local time with offset), "what": str}``,
        or ``{}`` if the file is missing, empty or unreadable.
    """
    try:
        text = lock_path(root).read_text()
        holder = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _message(root: Path, holder: dict) -> str:
    pid = holder.get("pid", "unknown")
    started = holder.get("started", "unknown time")
    what = holder.get("what", "unknown command")
    return (
        f"another mrirecon run (pid {pid}, started {started}, {what}) holds the lock on {root}; wait for it or stop it"
    )


@contextlib.contextmanager
def project_lock(root: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold the project's run lock for the duration of the ``with`` block.

    Args:
        root: project root (the folder with ``dvc.yaml``); the lock file
            ``<root>/.mrirecon.lock`` is created if missing.
        what: short description of the run, written for the message others get, e.g.
            ``"mrirecon train"``.

    Yields:
        the lock file's path.

    Raises:
        RunLocked: at once (never waits) if another process holds the lock; the message is
            ``"another mrirecon run (pid N, started <time>, <what>) holds the lock on
            <root>; wait for it or stop it"``.
        OSError: if the lock file cannot be created or opened (e.g. read-only project).
    """
    root = Path(root).resolve()
    held = _HELD.get(root)
    if held is not None and held[0] == os.getpid():
        _HELD[root] = (held[0], held[1] + 1)
        try:
            yield lock_path(root)
        finally:
            pid, depth = _HELD[root]
            _HELD[root] = (pid, depth - 1)
        return

    path = lock_path(root)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(root)
            raise RunLocked(_message(root, holder), root, holder) from None
        holder = {
            "pid": os.getpid(),
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "what": what,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        _HELD[root] = (os.getpid(), 1)
        try:
            yield path
        finally:
            del _HELD[root]
            os.ftruncate(fd, 0)  # the file no longer describes a live run
    finally:
        os.close(fd)  # closing the descriptor releases the flock
