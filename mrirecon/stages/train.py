"""Training stage, one grid point: ``slices.parquet`` + ``masks.parquet`` -> ``models/<name>/``.

Path in, path out, free of Prefect and MLflow: the fresh process and the MLflow child run around
it are :mod:`mrirecon.ops.worker`, the grid and the parent run :mod:`flows.train`.
:func:`train_grid_point` trains the point on the train split of its intensity, validating on the
val split, and writes it into a staging folder ``models/.<name>.tmp``: ``model.weights.h5`` and
``spec.json`` (:mod:`mrirecon.models.checkpoint`) and ``history.json`` (Keras per-epoch
``{"loss": [...], "val_loss": [...]}``). :func:`publish` adds ``result.json`` and renames the
folder to ``models/<name>`` in one step, so a point counts as done only once its folder is complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet, load_slice_set
from mrirecon.data.storage import write_json
from mrirecon.grid import GridPoint
from mrirecon.models.checkpoint import ModelSpec, save_checkpoint
from mrirecon.models.training import train_point

HISTORY = "history.json"
RESULT = "result.json"


@dataclass(frozen=True)
class TrainedPoint:
    """A grid point trained and written to its staging folder, not yet published.

    Attributes:
        point: the grid point.
        staging: ``models/.<name>.tmp`` holding ``model.weights.h5``, ``spec.json``, ``history.json``.
        destination: ``models/<name>``, where :func:`publish` moves it.
        val_mse: image-domain MSE of the magnitude reconstructions of the val slices.
        wall_time_s: seconds spent in ``model.fit``.
        epochs_run: epochs run (fewer than ``point.epochs`` after early stopping).
        stopped_early: whether early stopping ended training.
    """

    point: GridPoint
    staging: Path
    destination: Path
    val_mse: float
    wall_time_s: float
    epochs_run: int
    stopped_early: bool


def load_training_data(slices_path: str | Path, masks_path: str | Path, intensity: str) -> tuple[SliceSet, SliceSet]:
    """The train and val slice sets of ``intensity`` (:func:`mrirecon.data.slice_set.load_slice_set`)."""
    return (
        load_slice_set(slices_path, masks_path, intensity, "train"),
        load_slice_set(slices_path, masks_path, intensity, "val"),
    )


def train_grid_point(
    point: GridPoint,
    settings: ModelSettings,
    slices_path: str | Path,
    masks_path: str | Path,
    models_dir: str | Path,
    run_id: str = "",
    on_data: Callable[[SliceSet, SliceSet], None] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainedPoint:
    """Train one grid point and write it into its staging folder (see the module docstring).

    Args:
        point: the grid point (its ``intensity`` picks the masks).
        settings: settings shared by every grid point.
        slices_path, masks_path: ``slices.parquet`` and ``masks.parquet``.
        models_dir: the ``models/`` folder; the staging folder ``.<name>.tmp`` is replaced if present.
        run_id: MLflow run id recorded in ``spec.json`` (``""`` if none).
        on_data: called with ``(train, val)`` once the slices are loaded, before training.
        on_epoch: called with ``(epoch, {"loss", "val_loss"})`` after each epoch (1-based).

    Returns:
        the :class:`TrainedPoint`, to be :func:`publish` ed.
    """
    train, val = load_training_data(slices_path, masks_path, point.intensity)
    if on_data is not None:
        on_data(train, val)
    result = train_point(point, train, val, settings, on_epoch, verbose=0)
    models_dir = Path(models_dir)
    staging = models_dir / f".{point.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_checkpoint(result.model, ModelSpec(point, settings, int(train.images.shape[-1]), run_id), staging)
    write_json(staging / HISTORY, result.history)
    return TrainedPoint(
        point,
        staging,
        models_dir / point.name,
        result.val_mse,
        result.wall_time_s,
        result.epochs_run,
        result.stopped_early,
    )


def publish(trained: TrainedPoint, result: dict) -> Path:
    """Write ``result`` as ``result.json`` into the staging folder and rename it to ``models/<name>``
    (replacing an older folder); returns that folder."""
    write_json(trained.staging / RESULT, result)
    shutil.rmtree(trained.destination, ignore_errors=True)
    trained.staging.rename(trained.destination)  # the point counts as done only once this rename happened
    return trained.destination
