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

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet
from mrirecon.grid import GridPoint
from mrirecon.models.kspace_cnn import build_kspace_cnn
from mrirecon.models.transforms import KSPACE_SCALE, complex_to_channels, kspace_to_image
from mrirecon.models.unet import build_image_unet
from mrirecon.mri.fft import fft2c, ifft2c
from mrirecon.mri.forward import measure, zero_filled_magnitude
from mrirecon.mri.subsample import cartesian_mask
from mrirecon.seeding import rng_for

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


def build_model(point: GridPoint, size: int, settings: ModelSettings) -> keras.Model:
    """Build (uncompiled) the network of ``point`` for ``size x size`` slices."""
    if point.model == "image":
        return build_image_unet(
            size,
            point.layers,
            settings.base_filters,
            settings.image_data_consistency,
            settings.cascades if settings.image_data_consistency else 1,
            settings.refine_filters if settings.image_data_consistency else 0,
        )
    return build_kspace_cnn(size, point.layers, settings.kspace_filters, settings.data_consistency)


def model_inputs(
    kind: str,
    data: SliceSet,
    settings: ModelSettings | None = None,
    synthetic_phase: bool = False,
    noise_fraction: float = 0.0,
):
    """Network inputs and targets for a slice set.

    The measured k-space is ``M (F(x) + n)`` from :func:`mrirecon.mri.forward.measure`
    (``noise_fraction`` > 0 adds k-space noise, for robustness checks).

    Returns:
        ``(x, y)``: ``image`` (magnitude U-Net): float32 ``(N, H, W, 1)`` zero-filled / reference
        magnitudes; ``image`` with ``settings.image_data_consistency``:
        ``({"zero_filled": (N, H, W, 2), "kspace": (N, H, W, 2), "mask": (N, W)}, (N, H, W, 2))``
        complex images as (real, imag), or the reference magnitude ``(N, H, W, 1)`` as target with
        ``settings.refine_filters`` (the model then outputs the magnitude); ``kspace``:
        ``({"kspace", "mask"}, (N, H, W, 2))``.
    """
    settings = settings or ModelSettings()
    measured, truth = measure(data, synthetic_phase, settings.seed, noise_fraction, settings.seed)
    if kind == "image" and not settings.image_data_consistency:
        return zero_filled_magnitude(measured)[..., None], data.images[..., None]
    if kind == "image":
        x = {
            "zero_filled": complex_to_channels(ifft2c(measured)),
            "kspace": complex_to_channels(measured * KSPACE_SCALE),
            "mask": data.masks.astype(np.float32),
        }
        if settings.refine_filters:
            return x, np.abs(truth).astype(np.float32)[..., None]
        return x, complex_to_channels(truth.astype(np.complex64))
    x = {"kspace": complex_to_channels(measured * KSPACE_SCALE), "mask": data.masks.astype(np.float32)}
    return x, complex_to_channels(fft2c(truth) * KSPACE_SCALE)  # target: the full, noiseless k-space


def reconstruct(
    model: keras.Model,
    kind: str,
    data: SliceSet,
    batch_size: int = 32,
    settings: ModelSettings | None = None,
    synthetic_phase: bool = False,
    noise_fraction: float = 0.0,
) -> np.ndarray:
    """Magnitude reconstructions of a slice set, float32 ``(N, H, W)``."""
    settings = settings or ModelSettings()
    x, _ = model_inputs(kind, data, settings, synthetic_phase, noise_fraction)
    out = model.predict(x, batch_size=batch_size, verbose=0)
    if kind == "image" and (not settings.image_data_consistency or settings.refine_filters):
        return out[..., 0].astype(np.float32)
    if kind == "image":
        return np.hypot(out[..., 0], out[..., 1]).astype(np.float32)
    return kspace_to_image(out)


def epoch_masks(data: SliceSet, seed: int, epoch: int) -> np.ndarray:
    """Fresh masks of a slice set for one training epoch (``train.resample_masks``).

    Each slice's mask is drawn like its mask in ``masks.parquet``
    (:func:`mrirecon.mri.subsample.cartesian_mask` with ``data.acceleration``,
    ``data.center_fraction`` and ``data.mask_type``: the same ``round(W * center_fraction)`` centre
    lines and about ``W / R`` lines in all), from a private generator
    ``rng_for(seed, "train-mask", subject, slice_index, intensity, epoch)``: reproducible, different
    per epoch, and the global random state is not touched.

    Args:
        data: slices with their mask parameters (:func:`mrirecon.data.slice_set.load_slice_set`).
        seed: the training seed (``train.seed``).
        epoch: 1-based epoch number, as in ``history.json`` and the checkpoints.

    Returns:
        bool ``(N, W)`` phase-encode masks, True = line sampled, in the order of ``data``.

    Raises:
        ValueError: if ``data`` lacks its centre fraction or mask type (a hand-built slice set).
    """
    if data.center_fraction is None or data.mask_type is None:
        raise ValueError(
            f"slice set of intensity {data.intensity!r} has no center_fraction/mask_type: "
            "resampling masks needs the parameters of masks.parquet (load it with load_slice_set)"
        )
    width = data.masks.shape[-1]
    return np.stack(
        [
            cartesian_mask(
                width,
                data.acceleration,
                data.center_fraction,
                rng_for(seed, "train-mask", subject, int(index), data.intensity, epoch),
                data.mask_type,
            )
            for subject, index in zip(data.subjects, data.slice_index, strict=True)
        ]
    )


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The order of ``count`` training slices in one epoch with resampled masks: a permutation
    (int ``(count,)``) from ``rng_for(seed, "train-order", epoch)``, so it depends only on the epoch."""
    return rng_for(seed, "train-order", epoch).permutation(count)


def _rows(x: Any, rows: np.ndarray | slice) -> Any:
    """``x[rows]`` for an array, or for each array of a dict of inputs."""
    return {k: v[rows] for k, v in x.items()} if isinstance(x, dict) else x[rows]


class ResampledMasks(keras.utils.PyDataset):
    """Training batches with a fresh mask for every slice in every epoch (``train.resample_masks``).

    The inputs and targets of epoch ``e`` are :func:`model_inputs` of the slices with
    :func:`epoch_masks` ``(data, settings.seed, e)`` (the same forward model: synthetic phase
    included), in the order :func:`epoch_order`; batch ``i`` holds rows ``i*B .. (i+1)*B - 1`` of
    that order (the last batch may be smaller), as Keras batches arrays. The epoch is set by
    :meth:`set_epoch` (a callback of :func:`train_point`, at the start of each epoch); a batch is
    a function of the epoch and its index alone, so a training's first ``e`` epochs are the same
    in a longer run. One epoch's arrays are kept at a time (as large as the training arrays).

    Args:
        kind: the model kind (``image`` / ``kspace``).
        data: the training slices with their mask parameters.
        settings: shared settings (seed, data consistency).
        synthetic_phase: scan the slices with a synthetic phase (the grid point's).
        batch_size: slices per batch ``B``.
    """

    def __init__(
        self, kind: str, data: SliceSet, settings: ModelSettings, synthetic_phase: bool, batch_size: int
    ) -> None:
        super().__init__()  # one worker, no multiprocessing: batches in order, from this process
        self.kind, self.data, self.settings = kind, data, settings
        self.synthetic_phase, self.batch_size = synthetic_phase, batch_size
        self.epoch = 1
        self._lock = threading.Lock()
        self._cached: tuple[int, Any, np.ndarray] | None = None

    @property
    def num_batches(self) -> int:
        """Batches per epoch, ``ceil(N / B)``."""
        return math.ceil(len(self.data) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of ``epoch`` (1-based) from now on."""
        self.epoch = epoch

    def epoch_callback(self) -> keras.callbacks.Callback:
        """The Keras callback that sets the epoch at the start of each epoch of ``model.fit``
        (Keras calls it before the epoch's first batch is drawn)."""
        return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: self.set_epoch(epoch + 1))

    def epoch_arrays(self, epoch: int) -> tuple[Any, np.ndarray]:
        """Inputs and targets of every slice in ``epoch`` (1-based), in that epoch's order
        (:func:`model_inputs` shapes, ``N`` rows)."""
        with self._lock:
            if self._cached is None or self._cached[0] != epoch:
                masks = epoch_masks(self.data, self.settings.seed, epoch)
                x, y = model_inputs(self.kind, replace(self.data, masks=masks), self.settings, self.synthetic_phase)
                order = epoch_order(len(self.data), self.settings.seed, epoch)
                self._cached = (epoch, _rows(x, order), y[order])
            return self._cached[1], self._cached[2]

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        """Batch ``index`` of the current epoch: ``(inputs, targets)`` as :func:`model_inputs`, ``<= B`` rows."""
        x, y = self.epoch_arrays(self.epoch)
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return _rows(x, rows), y[rows]


def validation_mse(model: keras.Model, point: GridPoint, val: SliceSet, settings: ModelSettings) -> float:
    """Image-domain MSE of the magnitude reconstructions of ``val`` by ``model`` (mean over pixels and
    slices, in the units of the normalised images): the model-selection score of a grid point."""
    recon = reconstruct(model, point.model, val, settings=settings, synthetic_phase=point.synthetic_phase)
    return float(np.mean((recon.astype(np.float64) - val.images) ** 2))


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
        fit = model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            batch_size=point.batch_size,
            epochs=point.epochs,
            shuffle=True,
            callbacks=callbacks,
            verbose=verbose,
        )
    else:  # the dataset batches and shuffles itself, keyed by the epoch
        fit = model.fit(
            resampled,
            validation_data=(x_val, y_val),
            validation_batch_size=point.batch_size,
            epochs=point.epochs,
            shuffle=False,
            callbacks=callbacks,
            verbose=verbose,
        )
    wall = time.perf_counter() - start - saver.overhead_s
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    stopped = bool(stopper and stopper.stopped_epoch > 0)
    result = TrainResult(model, history, validation_mse(model, point, val, settings), epochs_run, stopped, wall)
    if on_checkpoint is not None and point.epochs in checkpoints:
        on_checkpoint(result)
    return result
