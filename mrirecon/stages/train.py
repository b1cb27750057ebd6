"""Training stage, one training: ``slices.parquet`` + ``masks.parquet`` -> ``models/<name>/`` per grid point.

Path in, path out, free of Prefect and MLflow: the fresh process and the MLflow child runs around
it are :mod:`mrirecon.ops.worker`, the grid and the parent run :mod:`flows.train`.
:func:`train_group` trains a :class:`mrirecon.grid.TrainingGroup` (grid points that differ only in
``epochs``) once on the train split of its intensity, validating on the val split, to the largest
epoch count. At the end of each point's epoch count it writes that point into a staging folder
``models/.<name>.tmp``: ``model.weights.h5`` and ``spec.json`` (:mod:`mrirecon.models.checkpoint`, with the
point's :class:`~mrirecon.models.recipe.Recipe`)
and ``history.json`` (Keras per-epoch ``{"loss": [...], "val_loss": [...]}``, one value per epoch
of that point). :func:`publish` adds ``result.json`` and renames the folder to ``models/<name>`` in
one step, so a point counts as done only once its folder is complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet, load_slice_set
from mrirecon.data.storage import write_json
from mrirecon.grid import GridPoint, TrainingGroup, training_groups
from mrirecon.models.checkpoint import ModelSpec, save_checkpoint
from mrirecon.models.recipe import Recipe
from mrirecon.models.training import TrainResult, train_point

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
        wall_time_s: seconds spent in ``model.fit`` up to the point's epoch count (of a shared
            training: up to that checkpoint, without the time spent writing earlier checkpoints).
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


def plan_trainings(points: Iterable[GridPoint], settings: ModelSettings) -> list[TrainingGroup]:
    """The trainings of ``points`` (:func:`mrirecon.grid.training_groups`): points that differ only in
    ``epochs`` share one, unless ``settings.early_stopping_patience`` is set; then every point trains
    alone, because early stopping's restored best weights are not a checkpoint of a longer training."""
    return training_groups(points, share_epochs=not settings.early_stopping_patience)


def train_group(
    group: TrainingGroup,
    settings: ModelSettings,
    slices_path: str | Path,
    masks_path: str | Path,
    models_dir: str | Path,
    run_ids: Mapping[str, str] | None = None,
    on_data: Callable[[SliceSet, SliceSet], None] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    on_trained: Callable[[TrainedPoint], None] | None = None,
    recipe: Recipe | None = None,
) -> list[TrainedPoint]:
    """Train ``group`` once, to its largest epoch count, and stage each of its points at its own
    epoch count (see the module docstring).

    At the end of each point's epoch count its staging folder ``models/.<name>.tmp`` gets the
    weights of that epoch, ``spec.json`` (the point itself, so ``epochs`` is the point's) and
    ``history.json`` truncated to the point's epochs; the point is then handed to ``on_trained``
    before training goes on, so a caller that :func:`publish` es it there keeps it if a later
    epoch fails or the process is killed.

    Args:
        group: the training (:func:`mrirecon.grid.training_groups`); its ``intensity`` picks the masks.
            More than one point needs ``settings.early_stopping_patience`` off.
        settings: settings shared by every grid point.
        slices_path, masks_path: ``slices.parquet`` and ``masks.parquet``.
        models_dir: the ``models/`` folder; a point's staging folder is replaced if present.
        run_ids: ``{point name: MLflow run id}`` recorded in each ``spec.json`` (``""`` if absent).
        on_data: called with ``(train, val)`` once the slices are loaded, before training.
        on_epoch: called with ``(epoch, {"loss", "val_loss"})`` after each epoch (1-based), before
            the checkpoint of that epoch.
        on_trained: called with each :class:`TrainedPoint` as soon as it is staged (ascending epochs).
        recipe: the group's recipe (:func:`mrirecon.models.recipe.recipe_for`; its points share intensity and
            synthetic phase), written into each ``spec.json``.

    Returns:
        the group's :class:`TrainedPoint` s in the order of ``group.points``.

    Raises:
        ValueError: if the group has several points and early stopping is on
            (:func:`mrirecon.models.training.train_point`).
    """
    train, val = load_training_data(slices_path, masks_path, group.final.intensity)
    if on_data is not None:
        on_data(train, val)
    models_dir, run_ids = Path(models_dir), run_ids or {}
    by_epochs = {p.epochs: p for p in group.points}
    size = int(train.images.shape[-1])
    trained: list[TrainedPoint] = []

    def stage(result: TrainResult) -> None:
        point = by_epochs.get(result.epochs_run, group.final)  # not found: the final point, stopped early
        staging = models_dir / f".{point.name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        save_checkpoint(result.model, ModelSpec(point, settings, size, run_ids.get(point.name, ""), recipe), staging)
        write_json(staging / HISTORY, result.history)
        done = TrainedPoint(
            point,
            staging,
            models_dir / point.name,
            result.val_mse,
            result.wall_time_s,
            result.epochs_run,
            result.stopped_early,
        )
        trained.append(done)
        if on_trained is not None:
            on_trained(done)

    train_point(group.final, train, val, settings, on_epoch, verbose=0, checkpoints=group.epochs, on_checkpoint=stage)
    return trained


def publish(trained: TrainedPoint, result: dict) -> Path:
    """Write ``result`` as ``result.json`` into the staging folder and rename it to ``models/<name>``
    (replacing an older folder); returns that folder."""
    write_json(trained.staging / RESULT, result)
    shutil.rmtree(trained.destination, ignore_errors=True)
    trained.staging.rename(trained.destination)  # the point counts as done only once this rename happened
    return trained.destination
