"""Ingestion: raw IXI T1 files -> ``volumes.parquet`` (one row per subject) + ``rejected.csv``.

Volumes are streamed one at a time into their own parquet row group, so memory holds one
volume whatever the size of the source. A file that fails its checks is written to the
rejected list with the reason and skipped; the good files are kept.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from .sources import Source, iter_source_files
from .storage import AtomicParquetWriter, atomic_path, encode_array
from .volumes import VolumeError, intensity_stats, load_volume

VOLUME_SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("site", pa.string()),
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("sha256", pa.string()),
        ("original_shape", pa.list_(pa.int32())),
        ("original_axcodes", pa.string()),
        ("shape", pa.list_(pa.int32())),
        ("voxel_mm", pa.list_(pa.float64())),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("mean", pa.float64()),
        ("std", pa.float64()),
        ("p99_5", pa.float64()),
        ("data", pa.large_binary()),
    ]
)


class NoUsableVolumes(RuntimeError):
    """Ingestion finished without a single good volume."""


@dataclass
class IngestSummary:
    """What ingestion did: counts, the source, and the rejected files with reasons."""

    source: dict
    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def ingest(
    source: Source,
    volumes_path: str | Path,
    rejected_path: str | Path,
    progress: Callable[[str, str], None] | None = None,
    limit: int | None = None,
) -> IngestSummary:
    """Read every IXI T1 file of ``source`` and write the volumes parquet atomically.

    Each row holds the subject, site, resolved source path, file name, SHA-256 of the file,
    on-disk shape and orientation, RAS shape and voxel size (mm), intensity statistics and
    the float32 RAS voxel data (header scaling applied) as bytes (C order, ``shape``).

    Args:
        source: resolved source (see :func:`mrirecon.sources.resolve_source`).
        volumes_path: output parquet (zstd), written atomically.
        rejected_path: output CSV with columns ``file, reason`` (header only if none).
        progress: optional callback ``(file name, "ok" | reason)`` called per file.
        limit: stop after this many good volumes (files are taken in name order).

    Returns:
        an :class:`IngestSummary`.

    Raises:
        NoUsableVolumes: if no file passed its checks (nothing is written then).
    """
    summary = IngestSummary(source={"kind": source.kind, "path": str(source.path), "origin": source.origin})
    seen: set[str] = set()
    with AtomicParquetWriter(volumes_path, VOLUME_SCHEMA) as writer:
        for name, raw in iter_source_files(source):
            if limit is not None and len(summary.accepted) >= limit:
                break
            try:
                volume = load_volume(name, raw)
                if volume.subject in seen:
                    raise VolumeError(f"{name}: duplicate of subject {volume.subject}, already ingested")
            except VolumeError as exc:
                summary.rejected.append((name, str(exc)))
                if progress:
                    progress(name, str(exc))
                continue
            seen.add(volume.subject)
            row = {
                "subject": volume.subject,
                "site": volume.site,
                "source": str(source.path),
                "source_file": name,
                "sha256": volume.sha256,
                "original_shape": list(volume.original_shape),
                "original_axcodes": volume.original_axcodes,
                "shape": list(volume.data.shape),
                "voxel_mm": list(volume.voxel_mm),
                **intensity_stats(volume.data),
                "data": encode_array(volume.data),
            }
            writer.write_rows([row])
            summary.accepted.append(volume.subject)
            if progress:
                progress(name, "ok")
        if not summary.accepted:
            raise NoUsableVolumes(
                f"no usable IXI T1 volume in {source.path} ({len(summary.rejected)} rejected)"
            )
        writer.set_metadata(
            {
                "mrirecon.source": json.dumps(summary.source),
                "mrirecon.rejected": json.dumps(summary.rejected),
            }
        )
    write_rejected(rejected_path, summary.rejected)
    return summary


def write_rejected(path: str | Path, rejected: list[tuple[str, str]]) -> None:
    """Write ``file, reason`` rows to a CSV atomically (a header alone when empty)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "reason"])
        writer.writerows(rejected)
