"""Training and inference of one grid point (Keras), free of Prefect and MLflow.

Image model: input the zero-filled magnitude ``|F^-1(M F(x))|``, target ``x``.
K-space model: input ``[M F(x)`` as (real, imag) in model units, mask``]``, target ``F(x)``
(see :mod:`mrirecon.models` for the scaling). Loss: MSE in the model's output units (the
seed report's choice); optimiser Adam. Model selection uses the *image-domain* MSE of the
magnitude reconstruction on the validation split, comparable across model kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from .datasets import SliceSet
from .grid import GridPoint
from .kspace import zero_filled
from .models import build_image_unet, build_kspace_cnn, image_to_kspace_2ch, kspace_to_image


@dataclass(frozen=True)
class ModelSettings:
    """Settings shared by every grid point (from ``params.yaml: train``)."""

    learning_rate: float = 1e-3
    base_filters: int = 16
    kspace_filters: int = 32
    data_consistency: bool = True
    early_stopping_patience: int | None = None
    seed: int = 0


@dataclass
class TrainResult:
    """Outcome of :func:`train_point`: model, per-epoch history, validation MSE, timing."""

    model: keras.Model
    history: dict[str, list[float]]
    val_mse: float
    epochs_run: int
    stopped_early: bool
    wall_time_s: float
    extra: dict = field(default_factory=dict)


def build_model(point: GridPoint, size: int, settings: ModelSettings) -> keras.Model:
    """Build (uncompiled) the network of ``point`` for ``size x size`` slices."""
    if point.model == "image":
        return build_image_unet(size, point.layers, settings.base_filters)
    return build_kspace_cnn(size, point.layers, settings.kspace_filters, settings.data_consistency)


def model_inputs(kind: str, data: SliceSet):
    """Network inputs and targets for a slice set.

    Returns:
        ``(x, y)``: for ``image`` float32 ``(N, H, W, 1)`` zero-filled / reference images;
        for ``kspace`` ``({"kspace": (N, H, W, 2), "mask": (N, W)}, (N, H, W, 2))``.
    """
    if kind == "image":
        zf = zero_filled(data.images, data.masks[:, None, :])
        return zf[..., None], data.images[..., None]
    x = {"kspace": image_to_kspace_2ch(data.images, data.masks), "mask": data.masks.astype(np.float32)}
    y = image_to_kspace_2ch(data.images, np.ones_like(data.masks))
    return x, y


def reconstruct(model: keras.Model, kind: str, data: SliceSet, batch_size: int = 32) -> np.ndarray:
    """Magnitude reconstructions of a slice set, float32 ``(N, H, W)``."""
    x, _ = model_inputs(kind, data)
    out = model.predict(x, batch_size=batch_size, verbose=0)
    return out[..., 0].astype(np.float32) if kind == "image" else kspace_to_image(out)


def train_point(
    point: GridPoint,
    train: SliceSet,
    val: SliceSet,
    settings: ModelSettings,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    verbose: int = 2,
) -> TrainResult:
    """Train one grid point on ``train``, validating on ``val`` after every epoch.

    Args:
        point: the configuration (model kind, layers, batch size, epochs, intensity).
        train, val: slice sets of that intensity.
        settings: learning rate, widths, data consistency, early stopping, seed.
        on_epoch: callback ``(epoch, {"loss", "val_loss"})`` after each epoch (1-based).
        verbose: Keras verbosity (2 = one line per epoch).

    Returns:
        :class:`TrainResult`; ``val_mse`` is the image-domain MSE of the magnitude
        reconstructions of ``val`` (mean over pixels and slices).
    """
    keras.utils.set_random_seed(settings.seed)
    size = train.images.shape[-1]
    model = build_model(point, size, settings)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss="mse")
    x_train, y_train = model_inputs(point.model, train)
    x_val, y_val = model_inputs(point.model, val)
    callbacks: list[keras.callbacks.Callback] = []
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})
        ))
    stopper = None
    if settings.early_stopping_patience:
        stopper = keras.callbacks.EarlyStopping(patience=settings.early_stopping_patience, restore_best_weights=True)
        callbacks.append(stopper)
    start = time.perf_counter()
    fit = model.fit(
        x_train, y_train, validation_data=(x_val, y_val), batch_size=point.batch_size,
        epochs=point.epochs, shuffle=True, callbacks=callbacks, verbose=verbose,
    )
    wall = time.perf_counter() - start
    recon = reconstruct(model, point.model, val)
    val_mse = float(np.mean((recon.astype(np.float64) - val.images) ** 2))
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    return TrainResult(model, history, val_mse, epochs_run, bool(stopper and stopper.stopped_epoch > 0), wall)
