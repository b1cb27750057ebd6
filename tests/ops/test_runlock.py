"""One run per project: a second run fails at once naming the holder; the kernel frees the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mrirecon.ops.runlock import LOCK_NAME, RunLocked, project_lock, read_holder

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import subprocess, sys, time
    from mrirecon.ops.runlock import project_lock
    with project_lock(sys.argv[1], "mrirecon train"):
        if len(sys.argv) > 2:  # start a long-lived child, then leave without waiting for it
            child = subprocess.Popen(["sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(child.pid, flush=True)
            sys.exit(0)
        print("locked", flush=True)
        time.sleep(120)
    """
)

CONTENDER = textwrap.dedent(
    """
    import sys
    from mrirecon.ops.runlock import RunLocked, project_lock
    try:
        with project_lock(sys.argv[1], "mrirecon ingest"):
            print("acquired")
    except RunLocked as exc:
        print(exc)
        sys.exit(3)
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _contend(root: Path) -> tuple[int, str, float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CONTENDER, str(root)], capture_output=True, text=True, env=_env(), timeout=60
    )
    return done.returncode, done.stdout.strip(), time.monotonic() - start


@pytest.fixture
def holder(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_second_process_fails_fast_naming_the_holder(tmp_path, holder):
    written = json.loads((tmp_path / LOCK_NAME).read_text())
    assert written["pid"] == holder.pid and written["what"] == "mrirecon train"
    code, output, elapsed = _contend(tmp_path)
    assert code == 3
    assert output == (
        f"another mrirecon run (pid {holder.pid}, started {written['started']}, mrirecon train) "
        f"holds the lock on {tmp_path.resolve()}; wait for it or stop it"
    )
    assert elapsed < 10  # no waiting: just interpreter start-up
    assert holder.poll() is None  # the holder was not disturbed


def test_lock_is_released_when_the_holder_is_killed(tmp_path, holder):
    assert _contend(tmp_path)[0] == 3
    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    code, output, _ = _contend(tmp_path)  # the kernel dropped the flock with the dead process
    assert (code, output) == (0, "acquired")
    assert read_holder(tmp_path) == {}  # a clean release empties the description


def test_lock_is_not_inherited_by_child_processes(tmp_path):
    started = subprocess.run(
        [sys.executable, "-c", HOLDER, str(tmp_path), "spawn"], capture_output=True, text=True, env=_env(), timeout=60
    )
    sleeper = int(started.stdout.strip())
    try:
        assert os.path.exists(f"/proc/{sleeper}")  # the holder's child still runs ...
        assert _contend(tmp_path)[:2] == (0, "acquired")  # ... but holds no lock
    finally:
        os.kill(sleeper, signal.SIGKILL)


def test_in_process_lock_is_reentrant_and_released_on_error(tmp_path):
    with project_lock(tmp_path, "mrirecon run") as path:
        assert path == tmp_path.resolve() / LOCK_NAME
        with project_lock(tmp_path, "mrirecon ingest"):  # a stage inside the pipeline
            assert read_holder(tmp_path)["what"] == "mrirecon run"
        assert read_holder(tmp_path)["pid"] == os.getpid()
        code, _, _ = _contend(tmp_path)
        assert code == 3
    with pytest.raises(ValueError, match="inside"):
        with project_lock(tmp_path, "mrirecon select"):
            raise ValueError("inside")
    assert _contend(tmp_path)[:2] == (0, "acquired")


def test_run_locked_carries_the_holder(tmp_path, holder):
    with pytest.raises(RunLocked) as info:
        with project_lock(tmp_path, "mrirecon masks"):
            pass
    assert info.value.holder["pid"] == holder.pid
    assert info.value.root == tmp_path.resolve()
    assert f"pid {holder.pid}" in str(info.value) and "wait for it or stop it" in str(info.value)
