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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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

__all__ = ["ModelSettings", "TrainResult", "build_model", "model_inputs", "reconstruct", "train_point"]


@dataclass
class TrainResult:
    """Outcome of :func:`train_point`.

    Attributes:
        model: the trained network (best weights if early stopping restored them).
        history: Keras per-epoch history, ``{"loss": [...], "val_loss": [...]}`` (model output units).
        val_mse: image-domain MSE of the magnitude reconstructions of the validation slices.
        epochs_run: epochs actually run (fewer than ``point.epochs`` after early stopping).
        stopped_early: whether early stopping ended training.
        wall_time_s: seconds spent in ``model.fit``.
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
        complex images as (real, imag); ``kspace``: ``({"kspace", "mask"}, (N, H, W, 2))``.
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
    if kind == "image" and not settings.image_data_consistency:
        return out[..., 0].astype(np.float32)
    if kind == "image":
        return np.hypot(out[..., 0], out[..., 1]).astype(np.float32)
    return kspace_to_image(out)


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
    x_train, y_train = model_inputs(point.model, train, settings, point.synthetic_phase)
    x_val, y_val = model_inputs(point.model, val, settings, point.synthetic_phase)
    callbacks: list[keras.callbacks.Callback] = []
    if on_epoch is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})
            )
        )
    stopper = None
    if settings.early_stopping_patience:
        stopper = keras.callbacks.EarlyStopping(patience=settings.early_stopping_patience, restore_best_weights=True)
        callbacks.append(stopper)
    start = time.perf_counter()
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
    wall = time.perf_counter() - start
    recon = reconstruct(model, point.model, val, settings=settings, synthetic_phase=point.synthetic_phase)
    val_mse = float(np.mean((recon.astype(np.float64) - val.images) ** 2))
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    return TrainResult(model, history, val_mse, epochs_run, bool(stopper and stopper.stopped_epoch > 0), wall)
