"""Atomic file output, file checksums, and array <-> parquet cell encoding (pyarrow, zstd).

Arrays are stored as raw little-endian bytes in a ``binary`` column next to a shape
column; :func:`decode_array` turns a cell back into an ndarray without copying.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it onto ``dest``.

    The temporary file is ``.<name>.<random>.tmp`` in ``dest``'s folder (same file system,
    so ``os.replace`` is atomic): readers see either the previous ``dest`` or the complete
    new one, never a partial file. On any exception the temporary file is removed and
    ``dest`` is left untouched. A process killed outright (SIGKILL, power loss) cannot run
    clean-up code: ``dest`` is still intact, and the orphaned ``.tmp`` file stays behind.

    Args:
        dest: final path; its folder is created if needed.
        durable: fsync the file before the rename and the folder after it, so a completed
            write also survives a power loss (not only a crash of this process).

    Yields:
        the temporary :class:`~pathlib.Path` to write (it exists, empty, mode 0666 & ~umask).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        yield Path(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, dest)
        if durable:
            _fsync_dir(dest.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file's bytes, read in chunks (:func:`hashlib.file_digest`), never whole.

    Args:
        path: the file.
        algorithm: a :mod:`hashlib` name: ``"sha256"`` (the sample manifest's checksums) or
            ``"md5"`` (what DVC stores in ``dvc.lock`` for a file).

    Returns:
        the lowercase hex digest.
    """
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def write_json(dest: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(dest: str | os.PathLike, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """Write ``rows`` (dicts keyed by ``columns``; a missing key is written empty) as CSV with a header, atomically.

    Raises:
        ValueError: if a row has a key not in ``columns`` (:class:`csv.DictWriter`).
    """
    with atomic_path(dest) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def encode_array(array: np.ndarray, dtype=np.float32) -> bytes:
    """C-order bytes of ``array`` cast to ``dtype`` (little-endian)."""
    return np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def decode_array(cell: bytes, shape, dtype=np.float32) -> np.ndarray:
    """Inverse of :func:`encode_array`: a read-only array of ``shape`` and ``dtype``."""
    return np.frombuffer(cell, dtype=np.dtype(dtype).newbyteorder("<")).reshape(tuple(int(s) for s in shape))


class AtomicParquetWriter:
    """Stream rows into a parquet file in row groups, renamed into place on ``close``.

    Use as a context manager. Rows go to a temporary file next to ``dest`` (see
    :func:`atomic_path`); only a clean exit renames it onto ``dest``. On an exception the
    partial file is deleted and the previous ``dest``, if any, is untouched; if the process
    is killed mid-write, ``dest`` is untouched too.

    Args:
        dest: final path.
        schema: pyarrow schema of the rows.
        metadata: key/value strings stored in the file's schema metadata.
    """

    _writer: pq.ParquetWriter  # opened by __enter__

    def __init__(self, dest: str | os.PathLike, schema: pa.Schema, metadata: dict[str, str] | None = None):
        self._ctx = atomic_path(dest)
        self._schema = schema.with_metadata(metadata or {})
        self.rows = 0

    def __enter__(self) -> AtomicParquetWriter:
        self._tmp = self._ctx.__enter__()
        try:
            self._writer = pq.ParquetWriter(self._tmp, self._schema, compression=COMPRESSION)
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write_rows(self, rows: list[dict]) -> None:
        """Write ``rows`` (dicts keyed by column) as one row group."""
        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self._schema))
            self.rows += len(rows)

    def set_metadata(self, metadata: dict[str, str]) -> None:
        """Add key/value metadata written in the footer (e.g. a summary known at the end)."""
        for key, value in metadata.items():
            self._writer.add_key_value_metadata({key: value})

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._writer.close()
        except BaseException as close_error:
            if exc is None:  # a failed close (e.g. disk full) must not publish a broken file
                exc_type, exc, tb = type(close_error), close_error, close_error.__traceback__
                self._ctx.__exit__(exc_type, exc, tb)
                raise
        self._ctx.__exit__(exc_type, exc, tb)


def iter_parquet_rows(path: str | os.PathLike, columns: list[str] | None = None) -> Iterator[dict]:
    """Yield the rows of a parquet file as dicts, one row group in memory at a time."""
    reader = pq.ParquetFile(path)
    for index in range(reader.num_row_groups):
        yield from reader.read_row_group(index, columns=columns).to_pylist()


def parquet_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The key/value metadata of a parquet file (str -> str), pandas' own key left out."""
    meta = pq.read_metadata(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}
