"""The whole DAG as one Prefect flow, each DVC stage a subflow.

For every stage in ``dvc.yaml`` order: ask DVC whether the stage is current; if not, run
its flow, then ``dvc commit`` it. So ``mrirecon run`` and ``dvc repro`` skip the same
stages and leave the same ``dvc.lock``; after either, ``dvc status`` is clean.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from prefect import flow, get_run_logger

from flows.evaluate import evaluate_flow
from flows.ingest import ingest_flow
from flows.masks import masks_flow
from flows.select import select_flow
from flows.train import train_flow, train_flow_for
from mrirecon.config import load_params
from mrirecon.data.sources import resolve_source
from mrirecon.data.storage import parquet_metadata
from mrirecon.ops.profiles import profile_params
from mrirecon.ops.project import Layout, find_root
from mrirecon.ops.runlock import project_lock
from tasks.dvc import commit_stage, stage_is_current

STAGES: dict[str, Callable[..., dict]] = {
    "ingest": ingest_flow,
    "select": select_flow,
    "masks": masks_flow,
    "train": train_flow,
    "evaluate": evaluate_flow,
}


def _source_changed(layout: Layout, source: str | None) -> bool:
    """True if the resolved source differs from the one recorded in volumes.parquet."""
    if not layout.volumes.exists():
        return True
    recorded = json.loads(parquet_metadata(layout.volumes).get("mrirecon.source", "{}"))
    current = resolve_source(source, load_params(layout.params).data.source, layout.raw_sample)
    return recorded.get("path") != str(current.path)


@flow(name="mrirecon-pipeline")
def pipeline_flow(
    source: str | None = None,
    force: bool = False,
    until: str | None = None,
    profile: str | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
) -> dict:
    """Run the stages that DVC reports stale (all with ``force``) and commit each to dvc.lock.

    Args:
        source: data source (directory, tar, or ``sample``); see :mod:`mrirecon.data.sources`.
        force: run every stage even if DVC says it is current.
        until: stop after this stage (default: run all stages).
        profile: run with this params profile (e.g. ``quick`` -> params-quick.yaml): it is ``params.yaml`` during
            the run (so ``dvc.lock`` records its values) and the user's ``params.yaml`` is put back afterwards,
            byte for byte (:mod:`mrirecon.ops.profiles`).
        workers: grid points trained at once (default: ``compute.workers`` in params).
        dask_address: Dask scheduler for the grid (default: ``compute.dask_address``).

    Returns:
        ``{stage: result of its flow, or "up to date"}``.
    """
    layout = Layout(find_root())
    with project_lock(layout.root, "mrirecon pipeline flow"):  # re-entrant when `mrirecon run` holds it
        with profile_params(layout.root, profile):
            return _run_stages(layout, source, force, until, workers, dask_address)


def _run_stages(layout: Layout, source, force, until, workers, dask_address) -> dict:
    logger = get_run_logger()
    compute = load_params(layout.params).compute
    runners = {"train": train_flow_for(workers or compute.workers, dask_address or compute.dask_address)}
    results: dict = {}
    for name, stage_flow in STAGES.items():
        stale = force
        if name == "ingest" and not stale and _source_changed(layout, source):
            logger.info("data source differs from the one recorded in %s: re-ingesting", layout.volumes.name)
            stale = True
        # Downstream stages need no flag: DVC sees their inputs' new hashes after the commit.
        if not stale and stage_is_current(layout.root, name):
            logger.info("stage %s is up to date", name)
            results[name] = "up to date"
            if name == until:
                break
            continue
        if name == "ingest":
            results[name] = stage_flow(source=source)
        else:
            results[name] = runners.get(name, stage_flow)()
        commit_stage(layout.root, name)
        if name == until:
            break
    return results
