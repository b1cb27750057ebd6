"""Atomic file output and array <-> parquet cell encoding (pyarrow, zstd).

Arrays are stored as raw little-endian bytes in a ``binary`` column next to a shape
column; :func:`decode_array` turns a cell back into an ndarray without copying.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it onto ``dest``.

    On any exception the temporary file is removed and ``dest`` is left untouched, so a
    crashed writer never leaves a half-written output.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(dest: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def encode_array(array: np.ndarray, dtype=np.float32) -> bytes:
    """C-order bytes of ``array`` cast to ``dtype`` (little-endian)."""
    return np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def decode_array(cell: bytes, shape, dtype=np.float32) -> np.ndarray:
    """Inverse of :func:`encode_array`: a read-only array of ``shape`` and ``dtype``."""
    return np.frombuffer(cell, dtype=np.dtype(dtype).newbyteorder("<")).reshape(tuple(int(s) for s in shape))


class AtomicParquetWriter:
    """Stream rows into a parquet file in row groups, renamed into place on ``close``.

    Use as a context manager; on error the partial file is deleted.

    Args:
        dest: final path.
        schema: pyarrow schema of the rows.
        metadata: key/value strings stored in the file's schema metadata.
    """

    def __init__(self, dest: str | os.PathLike, schema: pa.Schema, metadata: dict[str, str] | None = None):
        self._ctx = atomic_path(dest)
        self._schema = schema.with_metadata(metadata or {})
        self.rows = 0

    def __enter__(self) -> "AtomicParquetWriter":
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression=COMPRESSION)
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

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._writer.close()
        self._ctx.__exit__(exc_type, exc, tb)
        return False


def iter_parquet_rows(path: str | os.PathLike, columns: list[str] | None = None) -> Iterator[dict]:
    """Yield the rows of a parquet file as dicts, one row group in memory at a time."""
    reader = pq.ParquetFile(path)
    for index in range(reader.num_row_groups):
        yield from reader.read_row_group(index, columns=columns).to_pylist()


def parquet_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The key/value metadata of a parquet file (str -> str), pandas' own key left out."""
    meta = pq.read_metadata(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}
