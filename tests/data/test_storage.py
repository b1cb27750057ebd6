"""Nothing lost: outputs appear complete or not at all, whatever happens to the writer."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrirecon.data.storage import AtomicParquetWriter, atomic_path, file_digest, parquet_metadata, write_json

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = pa.schema([("id", pa.int64()), ("blob", pa.large_binary())])


def write_previous(dest: Path) -> None:
    with AtomicParquetWriter(dest, SCHEMA, {"version": "previous"}) as writer:
        writer.write_rows([{"id": i, "blob": bytes([i]) * 10} for i in range(3)])


def assert_previous(dest: Path) -> None:
    table = pq.read_table(dest)
    assert table.column("id").to_pylist() == [0, 1, 2]
    assert table.column("blob").to_pylist() == [b"\0" * 10, b"\1" * 10, b"\2" * 10]
    assert parquet_metadata(dest)["version"] == "previous"


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def test_writer_killed_mid_write_leaves_the_previous_file_intact(tmp_path):
    dest = tmp_path / "volumes.parquet"
    write_previous(dest)
    script = textwrap.dedent(
        f"""
        import os, sys
        import pyarrow as pa
        from mrirecon.data.storage import AtomicParquetWriter
        schema = pa.schema([("id", pa.int64()), ("blob", pa.large_binary())])
        with AtomicParquetWriter({str(dest)!r}, schema) as writer:
            for group in range(10_000):  # ~40 GB if never killed: it is killed long before
                writer.write_rows([{{"id": group, "blob": os.urandom(4 * 1024**2)}}])
                if group == 2:
                    print("writing", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        partial = temp_files(tmp_path)
        assert len(partial) == 1 and partial[0].stat().st_size >= 8 * 1024**2  # mid-write, several MB in
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert_previous(dest)  # still the complete previous version
    # what a SIGKILL leaves behind is only the orphaned temp file, never a half-written dest
    assert [p.name.startswith(".volumes.parquet.") for p in temp_files(tmp_path)] == [True]


def test_exception_inside_the_writer_leaves_no_temp_file_and_the_previous_file(tmp_path):
    dest = tmp_path / "slices.parquet"
    write_previous(dest)
    with pytest.raises(RuntimeError, match="boom"):
        with AtomicParquetWriter(dest, SCHEMA) as writer:
            writer.write_rows([{"id": 99, "blob": b"new"}])
            raise RuntimeError("boom")
    assert temp_files(tmp_path) == []
    assert_previous(dest)


def test_exception_before_any_previous_version_creates_nothing(tmp_path):
    dest = tmp_path / "sub" / "masks.parquet"
    with pytest.raises(KeyboardInterrupt):
        with AtomicParquetWriter(dest, SCHEMA) as writer:
            writer.write_rows([{"id": 1, "blob": b"x"}])
            raise KeyboardInterrupt
    assert list((tmp_path / "sub").iterdir()) == []


def test_failed_close_does_not_publish_a_broken_file(tmp_path):
    dest = tmp_path / "volumes.parquet"
    write_previous(dest)
    writer = AtomicParquetWriter(dest, SCHEMA)
    with pytest.raises(OSError, match="No space left"):
        with writer:
            writer.write_rows([{"id": 5, "blob": b"y"}])
            real_close = writer._writer.close

            def full_disk():
                real_close()
                raise OSError(28, "No space left on device")

            writer._writer.close = full_disk
    assert temp_files(tmp_path) == []
    assert_previous(dest)


def test_atomic_path_success_replaces_and_error_keeps(tmp_path):
    dest = tmp_path / "rejected.csv"
    dest.write_text("old\n")
    with pytest.raises(ValueError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise ValueError("stop")
    assert dest.read_text() == "old\n" and temp_files(tmp_path) == []
    with atomic_path(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".rejected.csv.")
        tmp.write_text("new\n")
    umask = os.umask(0)
    os.umask(umask)
    assert dest.read_text() == "new\n" and temp_files(tmp_path) == []
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
    write_json(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 1\n}\n'


def test_parquet_round_trip_with_footer_metadata(tmp_path):
    dest = tmp_path / "t.parquet"
    with AtomicParquetWriter(dest, SCHEMA, {"k": "v"}) as writer:
        writer.write_rows([{"id": 1, "blob": b"a"}])
        writer.write_rows([])
        writer.write_rows([{"id": 2, "blob": b"b"}, {"id": 3, "blob": b"c"}])
        writer.set_metadata({"summary": "3 rows"})
    assert writer.rows == 3
    assert pq.ParquetFile(dest).num_row_groups == 2
    assert pq.read_table(dest).column("id").to_pylist() == [1, 2, 3]
    meta = parquet_metadata(dest)
    assert (meta["k"], meta["summary"]) == ("v", "3 rows")


def test_file_digest_matches_hashlib_over_several_chunks(tmp_path):
    path = tmp_path / "blob.bin"
    raw = os.urandom(3 * 2**18 + 7) + bytes(2**20)  # larger than hashlib.file_digest's 256 KiB buffer
    path.write_bytes(raw)
    assert file_digest(path, "sha256") == hashlib.sha256(raw).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(raw).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert (
        file_digest(tmp_path / "empty", "sha256") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
