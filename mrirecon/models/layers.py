"""Keras layers of the reconstruction models: the one Keras centred FFT, k-space features and data consistency.

Only ``keras.layers`` and ``keras.ops`` are used, so the layers run unchanged on CPU or GPU
(TensorFlow backend; other Keras backends should work too). They are registered for Keras
serialization under the package name ``"mrirecon"`` (saved models refer to them by that name).

Masks are 1D line masks ``(B, W)`` float32 (or bool) in ``{0, 1}``, one flag per column =
phase-encode line (the project's mask convention); k-space tensors are ``(B, H, W, 2)``
(real, imaginary) in model units (:data:`mrirecon.models.transforms.KSPACE_SCALE`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from mrirecon.models.transforms import KSPACE_SCALE

_PACKAGE = "mrirecon"  # Keras registration name: keep it, saved models refer to it


def positive_int(name: str, value: int, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum`` (builder argument check).

    Raises:
        ValueError: naming ``name``, if ``value`` is a bool, not an integer or below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _roll2(x, shifts):
    """Roll ``x`` over its last two axes by ``shifts = (s_rows, s_cols)``."""
    return ops.roll(ops.roll(x, shifts[0], axis=-2), shifts[1], axis=-1)


def centred_fft2(real, imag, inverse: bool):
    """Orthonormal centred 2D (inverse) FFT of ``(B, H, W)`` real/imag tensors with ``keras.ops``.

    Same convention as :func:`mrirecon.mri.fft.fft2c` / :func:`~mrirecon.mri.fft.ifft2c`:
    ``ifftshift`` / ``fftshift`` are ``keras.ops.roll`` by ``-(n // 2)`` / ``n // 2`` over the
    last two axes (static ``H, W``); the inverse is ``conj(fft2(conj(k))) / sqrt(H W)``,
    independent of the backend's ``ifft2`` scaling.

    Returns:
        ``(real, imag)`` tensors ``(B, H, W)`` of the transform.
    """
    height, width = real.shape[-2], real.shape[-1]
    real = _roll2(real, (-(height // 2), -(width // 2)))
    imag = _roll2(imag, (-(height // 2), -(width // 2)))
    if inverse:
        out_real, out_imag = ops.fft2((real, -imag))
        out_imag = -out_imag
    else:
        out_real, out_imag = ops.fft2((real, imag))
    norm = float(np.sqrt(height * width))
    return (_roll2(out_real, (height // 2, width // 2)) / norm, _roll2(out_imag, (height // 2, width // 2)) / norm)


def _column_mask(mask, dtype):
    """``(B, W)`` line mask -> ``(B, 1, W, 1)`` so it broadcasts over rows and channels."""
    mask = ops.cast(mask, dtype)
    return ops.expand_dims(ops.expand_dims(mask, 1), -1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class KSpaceFeatures(layers.Layer):
    """Conv-stack input features: ``[k_re, k_im, mask]`` (mask broadcast over rows).

    Inputs: ``[kspace (B, H, W, 2), mask (B, W)]``; output ``(B, H, W, 3)``.
    """

    def call(self, inputs):
        kspace, mask = inputs
        column = _column_mask(mask, kspace.dtype)
        mask_channel = ops.broadcast_to(column, ops.shape(kspace[..., :1]))
        return ops.concatenate([kspace, mask_channel], axis=-1)

    def compute_output_shape(self, input_shape):
        kspace_shape = input_shape[0]
        return (*kspace_shape[:-1], 3)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class KSpaceDataConsistency(layers.Layer):
    """Hard data consistency: ``m * measured + (1 - m) * predicted`` per phase-encode line.

    Inputs: ``[predicted (B, H, W, C), measured (B, H, W, C), mask (B, W)]`` with the mask
    in ``{0, 1}``; output ``(B, H, W, C)`` equal to ``measured`` exactly where ``m == 1``.
    """

    def call(self, inputs):
        predicted, measured, mask = inputs
        column = _column_mask(mask, predicted.dtype)
        return column * measured + (1.0 - column) * predicted

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Magnitude(layers.Layer):
    """Magnitude of a complex image: ``(B, H, W, 2)`` real/imaginary -> ``(B, H, W, 1)``, ``sqrt(re^2 + im^2)``."""

    def call(self, inputs):
        return ops.sqrt(ops.sum(ops.square(inputs), axis=-1, keepdims=True) + 1e-12)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ImageDataConsistency(layers.Layer):
    """Hard data consistency for a complex image: put the measured k-space lines back.

    ``x_dc = F^-1( m * y + (1 - m) * F(x) )`` with the project's centred orthonormal FFT
    (:func:`centred_fft2`), as in the data-consistency layers of cascaded/unrolled networks
    (Schlemper et al. 2018, IEEE TMI 37(2):491-503, noiseless case). Inputs: ``[image (B, H, W, 2)
    real/imag, measured k-space (B, H, W, 2) in model units (KSPACE_SCALE), mask (B, W)]``; output
    ``(B, H, W, 2)`` whose k-space equals the measured lines where ``m == 1``.
    """

    def __init__(self, scale: float = KSPACE_SCALE, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        image, measured, mask = inputs
        k_real, k_imag = centred_fft2(image[..., 0], image[..., 1], inverse=False)
        column = ops.cast(ops.expand_dims(mask, 1), image.dtype)  # (B, 1, W)
        k_real = column * measured[..., 0] / self.scale + (1.0 - column) * k_real
        k_imag = column * measured[..., 1] / self.scale + (1.0 - column) * k_imag
        real, imag = centred_fft2(k_real, k_imag, inverse=True)
        return ops.stack([real, imag], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
