"""Ingestion: raw IXI T1 files -> ``volumes.parquet`` (one row per subject) + ``rejected.csv``.

Volumes are streamed one at a time into their own parquet row group, so memory holds one
volume whatever the size of the source. A file that fails its checks is written to the
rejected list with the reason and skipped; the good files are kept. The run fails only when
no usable volume remains (:class:`NoUsableVolumes`) or, with ``data.strict``, at the first
rejected file (:class:`StrictRejection`).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from mrirecon.data.sources import Source, SourceItem, iter_source_items
from mrirecon.data.storage import AtomicParquetWriter, atomic_path, encode_array
from mrirecon.data.volumes import REJECTION_KINDS, VolumeError, intensity_stats, load_volume, parse_ixi_name

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
    """Ingestion finished without a single good volume (nothing is written)."""


class StrictRejection(NoUsableVolumes):
    """``data.strict`` is true and a file was rejected: ingestion stops at the first bad file.

    A subclass of :class:`NoUsableVolumes` (ingestion ends without a usable result and
    writes nothing), so callers that handle that error, e.g. the CLI's exit code 1, handle
    this one too. ``rejection`` holds the offending :class:`Rejection`.
    """

    def __init__(self, message: str, rejection: Rejection):
        super().__init__(message)
        self.rejection = rejection


class Rejection(NamedTuple):
    """A rejected input file.

    Attributes:
        file: the file's base name (or the archive's name for a damaged tar).
        reason: one line naming the file and the reason, e.g.
            ``"IXI002-Guys-0828-T2.nii.gz: not a T1 file (modality T2)"``.
        kind: category (a key of :data:`mrirecon.data.volumes.REJECTION_KINDS`).
    """

    file: str
    reason: str
    kind: str


@dataclass
class IngestSummary:
    """What ingestion did: counts, the source, and the rejected files with reasons."""

    source: dict
    accepted: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def rejected_by_kind(self) -> dict[str, list[str]]:
        """Rejected file names grouped by reason label (see :func:`group_rejections`)."""
        return group_rejections(self.rejected)


def group_rejections(rejected: list[Rejection]) -> dict[str, list[str]]:
    """Group rejected files by the label of their kind, most frequent first.

    Args:
        rejected: :class:`Rejection` tuples.

    Returns:
        ``{label: [file, ...]}``, e.g. ``{"not a T1 file": ["IXI002-...-T2.nii.gz"]}``,
        ordered by decreasing count, then label.
    """
    groups: dict[str, list[str]] = {}
    for item in rejected:
        groups.setdefault(REJECTION_KINDS.get(item.kind, item.kind), []).append(item.file)
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def format_rejections(rejected: list[Rejection], max_names: int = 3) -> str:
    """One-line summary of rejected files grouped by reason.

    Args:
        rejected: :class:`Rejection` tuples.
        max_names: file names listed per reason before ``"+N more"``.

    Returns:
        e.g. ``"3 rejected: 2 not a T1 file (IXI002-...-T2.nii.gz, IXI002-...-PD.nii.gz);
        1 empty file (IXI009-...-T1.nii.gz)"``, or ``"none rejected"``.
    """
    if not rejected:
        return "none rejected"
    parts = []
    for label, files in group_rejections(rejected).items():
        shown = ", ".join(files[:max_names]) + (f", +{len(files) - max_names} more" if len(files) > max_names else "")
        parts.append(f"{len(files)} {label} ({shown})")
    return f"{len(rejected)} rejected: " + "; ".join(parts)


def ingest(
    source: Source,
    volumes_path: str | Path,
    rejected_path: str | Path,
    progress: Callable[[str, str], None] | None = None,
    limit: int | None = None,
    strict: bool = False,
    workers: int = 1,
) -> IngestSummary:
    """Read every IXI T1 file of ``source`` and write the volumes parquet atomically.

    Each row holds the subject, site, resolved source path, file name, SHA-256 of the file,
    on-disk shape and orientation, RAS shape and voxel size (mm), intensity statistics and
    the float32 RAS voxel data (header scaling applied) as bytes (C order, ``shape``).

    Every input is checked before use (:func:`mrirecon.data.sources.iter_source_items`,
    :func:`mrirecon.data.volumes.load_volume`); a file that fails is recorded with a one-line
    reason and skipped, and the run goes on with the good files. A second file of a
    subject already ingested is rejected as a duplicate (files are taken in name order).

    Args:
        source: resolved source (see :func:`mrirecon.data.sources.resolve_source`).
        volumes_path: output parquet (zstd), written atomically.
        rejected_path: output CSV with columns ``file, reason, kind`` (header only if
            none), written atomically.
        progress: optional callback ``(file name, "ok" | reason)`` called per file.
        limit: stop after this many good volumes (files are taken in name order).
        strict: raise :class:`StrictRejection` at the first rejected file.
        workers: processes decoding files in parallel (1 = in this process). Files are still
            written in source order and at most ``2 * workers`` decoded volumes wait in
            memory, so memory stays bounded whatever the number of files.

    Returns:
        an :class:`IngestSummary`.

    Raises:
        NoUsableVolumes: if no file passed its checks; the message groups the reasons.
        StrictRejection: with ``strict``, at the first rejected file.
        mrirecon.data.sources.SourceError: if the ``sample`` download fails.
        In every error case nothing is written (the previous outputs stay as they were).
    """
    summary = IngestSummary(source={"kind": source.kind, "path": str(source.path), "origin": source.origin})
    first_file: dict[str, str] = {}
    with AtomicParquetWriter(volumes_path, VOLUME_SCHEMA) as writer:
        for item, decoded in _decode_in_order(iter_source_items(source), workers):
            if limit is not None and len(summary.accepted) >= limit:
                break
            name = item.name
            try:
                if item.error is not None:
                    raise item.error
                subject, _ = parse_ixi_name(name)
                if subject in first_file:
                    raise VolumeError(
                        f"{name}: duplicate of subject {subject}, already ingested from {first_file[subject]}",
                        "duplicate",
                    )
                if isinstance(decoded, tuple):
                    raise VolumeError(*decoded)
            except VolumeError as exc:
                rejection = Rejection(name, str(exc), exc.kind)
                summary.rejected.append(rejection)
                if progress:
                    progress(name, str(exc))
                if strict:
                    raise StrictRejection(
                        f"{exc} (data.strict is true: stopping at the first rejected file; nothing written)",
                        rejection,
                    ) from exc
                continue
            first_file[decoded["subject"]] = name
            writer.write_rows([{**decoded, "source": str(source.path)}])
            summary.accepted.append(decoded["subject"])
            if progress:
                progress(name, "ok")
        if not summary.accepted:
            raise NoUsableVolumes(f"no usable IXI T1 volume in {source.path} ({format_rejections(summary.rejected)})")
        writer.set_metadata(
            {
                "mrirecon.source": json.dumps(summary.source),
                "mrirecon.rejected": json.dumps([list(r) for r in summary.rejected]),
            }
        )
    write_rejected(rejected_path, summary.rejected)
    return summary


def decode_file(name: str, raw: bytes | None) -> dict | tuple[str, str]:
    """Check and decode one file into a volumes.parquet row (without ``source``).

    Returns:
        the row dict, or ``(message, kind)`` of the :class:`VolumeError` that rejected it
        (a plain tuple, so it crosses process boundaries).
    """
    try:
        volume = load_volume(name, raw or b"")
    except VolumeError as exc:
        return (str(exc), exc.kind)
    return {
        "subject": volume.subject,
        "site": volume.site,
        "source_file": name,
        "sha256": volume.sha256,
        "original_shape": list(volume.original_shape),
        "original_axcodes": volume.original_axcodes,
        "shape": list(volume.data.shape),
        "voxel_mm": list(volume.voxel_mm),
        **intensity_stats(volume.data),
        "data": encode_array(volume.data),
    }


def _decode_in_order(items: Iterator[SourceItem], workers: int) -> Iterator[tuple[SourceItem, dict | tuple[str, str]]]:
    """``(item, _decode(item))`` in source order; decoding spread over ``workers`` processes.

    Items that already carry an error stay in this process (never decoded). At most
    ``2 * workers`` results are pending at any time.
    """
    if workers <= 1:
        for item in items:
            yield item, _decode(item)
        return
    pending: deque[tuple[SourceItem, Future | None]] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for item in items:
            pending.append((item, None if item.error is not None else pool.submit(decode_file, item.name, item.raw)))
            while len(pending) >= 2 * workers:
                yield _collect(*pending.popleft())
        while pending:
            yield _collect(*pending.popleft())


def _decode(item: SourceItem) -> dict | tuple[str, str]:
    """:func:`decode_file` of an item; one rejected before decoding gives its error's ``(message, kind)``."""
    if item.error is not None:
        return (str(item.error), item.error.kind)
    return decode_file(item.name, item.raw)


def _collect(item: SourceItem, future: Future | None) -> tuple[SourceItem, dict | tuple[str, str]]:
    """``(item, result)`` of a pending decode: the worker's result, or :func:`_decode` for no future."""
    return item, future.result() if future is not None else _decode(item)


def write_rejected(path: str | Path, rejected: list[Rejection]) -> None:
    """Write ``file, reason, kind`` rows to a CSV atomically (a header alone when empty).

    Args:
        path: destination CSV.
        rejected: :class:`Rejection` tuples.
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(Rejection._fields)
        writer.writerows(rejected)
