"""A grid point's network, its inputs and its reconstructions (Keras), free of Prefect and MLflow.

Image model: input the zero-filled magnitude ``|F^-1(M F(x))|``, target ``x``; with image data consistency,
input the complex zero-filled image, measured k-space and mask, target the complex image (or its magnitude
with the magnitude refinement). K-space model: input ``[M F(x)`` as (real, imag) in model units, mask``]``,
target ``F(x)`` (see :mod:`mrirecon.models.transforms` for the scaling). ``x`` carries a synthetic phase for
grid points with ``synthetic_phase`` (:mod:`mrirecon.mri.forward`).
"""

from __future__ import annotations

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
    x = kspace_inputs(kind, measured, data.masks, settings)
    if kind == "image" and not settings.image_data_consistency:
        return x, data.images[..., None]
    if kind == "image" and settings.refine_filters:
        return x, np.abs(truth).astype(np.float32)[..., None]
    if kind == "image":
        return x, complex_to_channels(truth.astype(np.complex64))
    return x, complex_to_channels(fft2c(truth) * KSPACE_SCALE)  # target: the full, noiseless k-space


def kspace_inputs(kind: str, measured: np.ndarray, masks: np.ndarray, settings: ModelSettings):
    """Network inputs of a grid point from measured k-space alone (the input half of :func:`model_inputs`).

    Args:
        kind: ``image`` or ``kspace`` (:data:`mrirecon.grid.MODEL_KINDS`).
        measured: complex ``(N, H, W)`` undersampled k-space ``M F(x)`` (centred orthonormal FFT,
            :mod:`mrirecon.mri.fft`; unmeasured columns 0).
        masks: bool or {0, 1} ``(N, W)``, 1 = measured phase-encode column.
        settings: the point's settings (image data consistency or not).

    Returns:
        float32 arrays as :func:`model_inputs` ``x``: ``(N, H, W, 1)`` zero-filled magnitudes, or a dict of
        ``zero_filled`` / ``kspace`` ``(N, H, W, 2)`` and ``mask`` ``(N, W)``.
    """
    if kind == "image" and not settings.image_data_consistency:
        return zero_filled_magnitude(measured)[..., None]
    x = {"kspace": complex_to_channels(measured * KSPACE_SCALE), "mask": np.asarray(masks).astype(np.float32)}
    if kind == "image":
        return {"zero_filled": complex_to_channels(ifft2c(measured)), **x}
    return x


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
    measured, _ = measure(data, synthetic_phase, settings.seed, noise_fraction, settings.seed)
    return reconstruct_kspace(model, kind, measured, data.masks, settings, batch_size)


def reconstruct_kspace(
    model: keras.Model,
    kind: str,
    measured: np.ndarray,
    masks: np.ndarray,
    settings: ModelSettings,
    batch_size: int = 32,
) -> np.ndarray:
    """Magnitude reconstructions from measured k-space and masks: what :func:`reconstruct` does after simulating
    the measurement, for k-space that comes from elsewhere (the MLflow model, :mod:`mrirecon.ops.mlflow_model`).

    Args:
        model: the grid point's network (:func:`mrirecon.models.checkpoint.load_trained_model`).
        kind: its ``point.model`` (``image`` or ``kspace``).
        measured: complex ``(N, H, W)`` k-space ``M F(x)`` of slices ``x`` prepared as the point's recipe says
            (:class:`mrirecon.models.recipe.Recipe`: normalised so the volume's percentile is 1, ``H = W`` =
            the network's size), ``F`` the centred orthonormal FFT (:func:`mrirecon.mri.fft.fft2c`).
        masks: bool or {0, 1} ``(N, W)``, 1 = measured phase-encode column (k-space column).
        settings: the point's settings.
        batch_size: slices per forward pass.

    Returns:
        float32 ``(N, H, W)`` magnitude reconstructions in the units of the normalised images.

    Raises:
        ValueError: if the shapes disagree with each other or with the network's input size.
    """
    measured, masks = np.asarray(measured), np.asarray(masks)
    size = model.inputs[0].shape[1]
    if measured.ndim != 3 or measured.shape[1:] != (size, size):
        raise ValueError(f"k-space must be (N, {size}, {size}) for this network, got shape {measured.shape}")
    if masks.shape != (measured.shape[0], size):
        raise ValueError(f"mask must be (N, W) = {(measured.shape[0], size)}, got shape {masks.shape}")
    out = model.predict(kspace_inputs(kind, measured, masks, settings), batch_size=batch_size, verbose=0)
    if kind == "image" and (not settings.image_data_consistency or settings.refine_filters):
        return out[..., 0].astype(np.float32)
    if kind == "image":
        return np.hypot(out[..., 0], out[..., 1]).astype(np.float32)
    return kspace_to_image(out)


def validation_mse(model: keras.Model, point: GridPoint, val: SliceSet, settings: ModelSettings) -> float:
    """Image-domain MSE of the magnitude reconstructions of ``val`` by ``model`` (mean over pixels and
    slices, in the units of the normalised images): the model-selection score of a grid point."""
    recon = reconstruct(model, point.model, val, settings=settings, synthetic_phase=point.synthetic_phase)
    return float(np.mean((recon.astype(np.float64) - val.images) ** 2))
