"""Training and inference of one grid point (Keras), free of Prefect and MLflow.

Image model: input the zero-filled magnitude ``|F^-1(M F(x))|``, target ``x``; with image
data consistency, input the complex zero-filled image, measured k-space and mask, target the
complex image. K-space model: input ``[M F(x)`` as (real, imag) in model units, mask``]``,
target ``F(x)`` (see :mod:`mrirecon.models.transforms` for the scaling). ``x`` carries a synthetic
phase for grid points with ``synthetic_phase`` (:mod:`mrirecon.mri.forward`). Loss: MSE in the
model's output units (the seed report's choice); optimiser Adam. Model selection uses the
*image-domain* MSE of the magnitude reconstruction on the validation split, comparable across
model kinds. The settings shared by every grid point are :class:`mrirecon.config.ModelSettings`
(also importable from here).

One training can serve several grid points that differ only in ``epochs``
(:class:`mrirecon.grid.TrainingGroup`): :func:`train_point` hands a checkpoint to a callback at
the end of each requested epoch. Nothing else changes (same seed, initial weights, shuffling and
constant learning rate), so the checkpoint after ``e`` epochs is the network a separate
``e``-epoch training gives. Not with early stopping: its restored best weights are not a
checkpoint of the longer training, so it refuses checkpoints before the last epoch.

With ``settings.resample_masks`` every training slice gets a fresh mask in each epoch
(:func:`epoch_masks`: the mask function and intensity of ``masks.parquet``, drawn from a private
generator keyed by seed, slice, intensity and epoch) and the epoch's inputs are simulated from it
through the same forward model (:class:`ResampledMasks`, which also shuffles, by a generator keyed by
the epoch). What epoch ``e`` sees depends only on ``e``, so a shared training's checkpoints still
equal separate trainings. Validation (``val_loss``, :func:`validation_mse`) and test keep the fixed
masks. With it off (the default) training is the plain ``model.fit`` on arrays it always was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet
from mrirecon.grid import GridPoint
from mrirecon.models.inference import build_model, model_inputs, reconstruct, validation_mse
from mrirecon.models.resampling import ResampledMasks, epoch_masks, epoch_order

__all__ = [
    "ModelSettings",
    "ResampledMasks",
    "TrainResult",
    "build_model",
    "epoch_masks",
    "epoch_order",
    "model_inputs",
    "reconstruct",
    "train_point",
    "validation_mse",
]


@dataclass
class TrainResult:
    """Outcome of :func:`train_point`, or one of its checkpoints (the outcome of a training to that epoch).

    Attributes:
        model: the trained network (best weights if early stopping restored them). For a checkpoint
            before the last epoch, the live model that training goes on updating: save or copy it
            inside the callback.
        history: Keras per-epoch history, ``{"loss": [...], "val_loss": [...]}`` (model output units),
            one value per epoch run (up to the checkpoint's epoch).
        val_mse: image-domain MSE of the magnitude reconstructions of the validation slices
            (:func:`validation_mse`).
        epochs_run: epochs actually run (fewer than ``point.epochs`` after early stopping; the
            checkpoint's epoch count for a checkpoint).
        stopped_early: whether early stopping ended training.
        wall_time_s: seconds spent in ``model.fit`` up to that epoch, less the time spent in
            checkpoint callbacks.
    """

    model: keras.Model
    history: dict[str, list[float]]
    val_mse: float
    epochs_run: int
    stopped_early: bool
    wall_time_s: float


class _Checkpoints(keras.callbacks.Callback):
    """Keras callback handing a :class:`TrainResult` to ``on_checkpoint`` at the end of each epoch in
    ``epochs`` (1-based), timing the training without the time spent here."""

    def __init__(
        self,
        point: GridPoint,
        val: SliceSet,
        settings: ModelSettings,
        epochs: Sequence[int],
        on_checkpoint: Callable[[TrainResult], None] | None,
    ):
        super().__init__()
        self.point, self.val, self.settings, self.on_checkpoint = point, val, settings, on_checkpoint
        self.epochs = set(epochs)
        self.history: dict[str, list[float]] = {}
        self.start = time.perf_counter()  # reset when model.fit starts
        self.overhead_s = 0.0  # seconds spent in checkpoint callbacks, not training

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if epoch + 1 not in self.epochs or self.on_checkpoint is None:
            return
        begin = time.perf_counter()
        result = TrainResult(
            self.model,
            {k: list(v) for k, v in self.history.items()},
            validation_mse(self.model, self.point, self.val, self.settings),
            epoch + 1,
            False,
            begin - self.start - self.overhead_s,
        )
        self.on_checkpoint(result)
        self.overhead_s += time.perf_counter() - begin


def train_point(
    point: GridPoint,
    train: SliceSet,
    val: SliceSet,
    settings: ModelSettings,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    verbose: int = 2,
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[TrainResult], None] | None = None,
) -> TrainResult:
    """Train one grid point on ``train``, validating on ``val`` after every epoch.

    Args:
        point: the configuration (model kind, layers, batch size, epochs, intensity); for a shared
            training (:class:`mrirecon.grid.TrainingGroup`) the point with the most epochs.
        train, val: slice sets of that intensity.
        settings: learning rate, widths, data consistency, early stopping, seed, mask resampling
            (``resample_masks``: ``train`` needs its mask parameters, see :func:`epoch_masks`).
        on_epoch: callback ``(epoch, {"loss", "val_loss"})`` after each epoch (1-based), called before
            a checkpoint of that epoch.
        verbose: Keras verbosity (2 = one line per epoch).
        checkpoints: epoch counts (1-based, each in ``1..point.epochs``) after which ``on_checkpoint``
            gets the :class:`TrainResult` a training of that many epochs would return (the weights
            after that epoch, ``history`` truncated to it, its ``val_mse``). A checkpoint at
            ``point.epochs`` is the returned result itself, handed over after training ends.
        on_checkpoint: the checkpoint callback; ``result.model`` is the live model.

    Returns:
        :class:`TrainResult`; ``val_mse`` is the image-domain MSE of the magnitude
        reconstructions of ``val`` (mean over pixels and slices).

    Raises:
        ValueError: if a checkpoint is outside ``1..point.epochs``, or early stopping is on and a
            checkpoint comes before ``point.epochs`` (early stopping's restored best weights would
            make it differ from a separate training), or ``settings.resample_masks`` is on and
            ``train`` has no mask parameters.
    """
    outside = sorted(e for e in checkpoints if not 1 <= e <= point.epochs)
    if outside:
        raise ValueError(f"{point.name}: checkpoint epochs {outside} outside 1..{point.epochs}")
    if settings.early_stopping_patience and any(e != point.epochs for e in checkpoints):
        raise ValueError(
            f"{point.name}: checkpoints {sorted(checkpoints)} before the last epoch need "
            "early_stopping_patience off (each point trains alone with early stopping)"
        )
    keras.utils.set_random_seed(settings.seed)
    size = train.images.shape[-1]
    model = build_model(point, size, settings)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss="mse")
    resampled = None
    if settings.resample_masks:
        resampled = ResampledMasks(point.model, train, settings, point.synthetic_phase, point.batch_size)
        resampled.epoch_arrays(1)  # fail here, not inside Keras, if the masks cannot be redrawn
    else:
        x_train, y_train = model_inputs(point.model, train, settings, point.synthetic_phase)
    x_val, y_val = model_inputs(point.model, val, settings, point.synthetic_phase)  # the fixed masks, every epoch
    callbacks: list[keras.callbacks.Callback] = []
    if resampled is not None:
        callbacks.append(resampled.epoch_callback())
    if on_epoch is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})
            )
        )
    saver = _Checkpoints(point, val, settings, [e for e in checkpoints if e < point.epochs], on_checkpoint)
    callbacks.append(saver)
    stopper = None
    if settings.early_stopping_patience:
        stopper = keras.callbacks.EarlyStopping(patience=settings.early_stopping_patience, restore_best_weights=True)
        callbacks.append(stopper)
    start = saver.start = time.perf_counter()
    if resampled is None:
        data: dict = {"x": x_train, "y": y_train, "batch_size": point.batch_size, "shuffle": True}
    else:  # the dataset batches and shuffles itself, keyed by the epoch
        data = {"x": resampled, "validation_batch_size": point.batch_size, "shuffle": False}
    fit = model.fit(**data, validation_data=(x_val, y_val), epochs=point.epochs, callbacks=callbacks, verbose=verbose)
    wall = time.perf_counter() - start - saver.overhead_s
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    stopped = bool(stopper and stopper.stopped_epoch > 0)
    result = TrainResult(model, history, validation_mse(model, point, val, settings), epochs_run, stopped, wall)
    if on_checkpoint is not None and point.epochs in checkpoints:
        on_checkpoint(result)
    return result
