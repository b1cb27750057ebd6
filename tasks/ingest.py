"""Prefect tasks of the ingestion step (thin wrappers over :mod:`mrirecon.ingest`)."""

from __future__ import annotations

from pathlib import Path

from prefect.cache_policies import NO_CACHE
from prefect import get_run_logger, task

from mrirecon.ingest import IngestSummary, ingest
from mrirecon.sources import Source, resolve_source


@task(name="resolve-source", cache_policy=NO_CACHE)
def resolve_source_task(option: str | None, params_source: str, cache_dir: Path) -> Source:
    """Resolve ``--source`` > ``MRIRECON_SOURCE`` > params.yaml to an absolute, reachable source."""
    source = resolve_source(option, params_source, cache_dir)
    get_run_logger().info("data source: %s %s (from %s)", source.kind, source.path, source.origin)
    return source


@task(name="ingest-volumes", cache_policy=NO_CACHE)
def ingest_task(source: Source, volumes_path: Path, rejected_path: Path, limit: int | None = None) -> IngestSummary:
    """Stream the source's volumes into ``volumes.parquet``; log one line per file."""
    logger = get_run_logger()
    count = {"n": 0}

    def progress(name: str, status: str) -> None:
        count["n"] += 1
        if status == "ok":
            logger.info("[%d] %s ok", count["n"], name)
        else:
            logger.warning("[%d] rejected %s", count["n"], status)

    summary = ingest(source, volumes_path, rejected_path, progress, limit)
    logger.info("ingested %d volumes, rejected %d (see %s)", len(summary.accepted), len(summary.rejected), rejected_path)
    return summary
