"""Prefect tasks of the ingestion step (thin wrappers over :mod:`mrirecon.stages.ingest`)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.data.sources import Source, resolve_source
from mrirecon.stages.ingest import IngestSummary, NoUsableVolumes, format_rejections, group_rejections, ingest


@task(name="resolve-source", cache_policy=NO_CACHE)
def resolve_source_task(option: str | None, params_source: str | None, cache_dir: Path) -> Source:
    """Resolve ``--source`` > ``MRIRECON_SOURCE`` > params.yaml to an absolute, reachable source."""
    source = resolve_source(option, params_source, cache_dir)
    get_run_logger().info("data source: %s %s (from %s)", source.kind, source.path, source.origin)
    return source


@task(name="ingest-volumes", cache_policy=NO_CACHE)
def ingest_task(
    source: Source,
    volumes_path: Path,
    rejected_path: Path,
    limit: int | None = None,
    strict: bool = False,
    workers: int = 1,
) -> IngestSummary:
    """Stream the source's volumes into ``volumes.parquet``; log one line per file and, at the
    end, the rejected files grouped by reason (also in ``rejected_path``).

    Raises:
        NoUsableVolumes: no file passed its checks (logged as an error first).
        StrictRejection: ``strict`` and a file was rejected.
    """
    logger = get_run_logger()
    count = {"n": 0}

    def progress(name: str, status: str) -> None:
        count["n"] += 1
        if status == "ok":
            logger.info("[%d] %s ok", count["n"], name)
        else:
            logger.warning("[%d] rejected %s", count["n"], status)

    try:
        summary = ingest(source, volumes_path, rejected_path, progress, limit, strict=strict, workers=workers)
    except NoUsableVolumes as exc:
        logger.error("%s", exc)
        raise
    logger.info(
        "ingested %d volumes, rejected %d (see %s)", len(summary.accepted), len(summary.rejected), rejected_path
    )
    if summary.rejected:
        logger.warning("rejected files by reason: %s", format_rejections(summary.rejected, max_names=5))
        for label, files in group_rejections(summary.rejected).items():
            logger.info("  %d %s: %s", len(files), label, ", ".join(files))
    return summary
