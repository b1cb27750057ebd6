"""Flow of the ``train`` DVC stage: the grid, each point an MLflow child run -> models/."""

from __future__ import annotations

from prefect import flow, get_run_logger

from mrirecon.grid import expand_grid
from mrirecon.params import load_params
from mrirecon.project import Layout, find_root
from mrirecon.provenance import file_md5, git_commit
from mrirecon.storage import write_json
from tasks import tracking
from tasks.train import start_parent_task, train_point_task


@flow(name="train")
def train_flow() -> dict:
    """Train every grid point (one fresh process each) under one MLflow parent run."""
    logger = get_run_logger()
    layout = Layout(find_root())
    params = load_params(layout.params)
    if params.train is None:
        raise ValueError(f"{layout.params}: no train section")
    points = expand_grid(params.train.grid, list(params.masks.intensities))
    tags = {
        "data_version": f"slices:{file_md5(layout.slices)} masks:{file_md5(layout.masks)}",
        "git_commit": git_commit(layout.root),
    }
    experiment_id, parent = start_parent_task(
        layout.root, params.train.experiment, tags,
        {"grid_points": len(points), **{f"grid.{k}": v for k, v in params.train.grid.items()}},
    )
    logger.info("training %d grid points", len(points))
    job = {
        "root": str(layout.root), "settings": params.train.settings(), "experiment_id": experiment_id,
        "parent_run_id": parent, "tags": tags, "slices": str(layout.slices), "masks": str(layout.masks),
        "models_dir": str(layout.models),
    }
    try:
        results = [train_point_task(point, job) for point in points]
    except BaseException:
        tracking.end_run(layout.root, parent, "FAILED")
        raise
    summary = {"experiment_id": experiment_id, "parent_run_id": parent, **tags,
               "points": [{**p.as_params(), **r} for p, r in zip(points, results)]}
    write_json(layout.models / "train.json", summary)
    tracking.log_metrics(layout.root, parent, {"train_wall_time_s": sum(r["wall_time_s"] for r in results),
                                                "peak_rss_mb": max(r["peak_rss_mb"] for r in results)})
    return summary
