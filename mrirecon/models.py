"""Keras 3 reconstruction models: an image-domain residual U-Net and a k-space CNN.

Both builders return *uncompiled* :class:`keras.Model` objects (the caller chooses the
optimiser and loss) that run unchanged on CPU or GPU (TensorFlow backend; only
``keras.layers`` and ``keras.ops`` are used, so other Keras backends should work too).

Image-domain approach (:func:`build_image_unet`)
    The network maps the zero-filled magnitude image ``|F^-1(M F(x))|`` to the fully
    sampled magnitude image through a residual U-Net (Hyun et al. 2018, "Deep learning for
    undersampled MRI reconstruction", Phys. Med. Biol. 63 135007; U-Net of Ronneberger et
    al. 2015, MICCAI, arXiv:1505.04597). Tensors are ``(batch, H, W, 1)`` float32.

K-space approach (:func:`build_kspace_cnn`)
    The network fills in the missing phase-encode lines of k-space directly. Inputs are
    the undersampled k-space as two real channels (real, imaginary), shape
    ``(batch, H, W, 2)``, produced by :func:`image_to_kspace_2ch`, and the 1D line mask,
    shape ``(batch, W)`` float32 in ``{0, 1}`` (one flag per column = phase-encode line,
    the project's mask convention). The output is the completed k-space in the same
    2-channel units; :func:`kspace_to_image` turns it into a magnitude image.

K-space scaling
    With the project's orthonormal centred FFT (:mod:`mrirecon.kspace`) Parseval holds,
    so k-space of a normalised 128x128 slice has an RMS of about 0.4, like the image, but
    its dynamic range is huge: the DC coefficient is ``mean(x) * sqrt(H W)`` (about 28 for
    the IXI T1 slices at 128x128) while the outer phase-encode lines have magnitudes of
    about 0.03-0.1, a ratio of roughly 1000. The model's k-space inputs and outputs are
    ``KSPACE_SCALE * fft2c(x)`` split into (real, imag) with ``KSPACE_SCALE = 1.0``
    (applied by :func:`image_to_kspace_2ch`, undone by :func:`kspace_to_image`), i.e. no
    extra normalisation beyond the orthonormal FFT, which already makes the values O(1)
    on average because the images are normalised per volume. This linear choice keeps
    data consistency exact and makes an MSE loss on the 2-channel k-space equal to half
    the complex image-domain MSE (Parseval), so k-space and image losses are comparable.
    The network predicts a *residual* added to the input, and the last convolution is
    linear, so the large low-frequency values pass through untouched and the convolutions
    only have to produce the small missing high-frequency values. Alternatives were tried
    on the 525 IXI training slices (R = 4, 8 epochs, 5 layers): scaling by 20 and feeding
    the convolutions ``asinh``-compressed k-space trained equally well (validation PSNR
    within 0.25 dB; all +1.5 to +1.8 dB over zero filling), so the simplest was kept.
    The mask is appended as a third input channel of the convolutions so the network
    knows which lines are measured.

Data consistency
    For the k-space CNN, ``data_consistency=True`` replaces the prediction on the sampled
    lines by the measured values: ``out = m * k_in + (1 - m) * k_pred``, which returns the
    input values bit-exactly where ``m == 1``. For the magnitude-image U-Net exact data
    consistency is impossible (the phase of the image is not an input, so the measured
    k-space cannot be re-imposed); with ``data_consistency=True`` the U-Net instead takes
    the complex zero-filled image (real, imaginary channels) and ends with an exact
    data-consistency step (:class:`ImageDataConsistency`), optionally as a cascade.

Initialisation
    The final convolution of both models is zero-initialised, so an untrained model is the
    identity map: the U-Net returns the zero-filled image and the k-space CNN returns the
    input k-space (i.e. the zero-filled reconstruction). Training starts from the
    zero-filled baseline.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .kspace import fft2c, ifft2c

KSPACE_SCALE = 1.0
"""Constant multiplying orthonormal centred k-space to give the k-space CNN's units (see module doc)."""

_PACKAGE = "mrirecon"


# --------------------------------------------------------------------------------------
# numpy helpers
# --------------------------------------------------------------------------------------


def complex_to_channels(z: np.ndarray) -> np.ndarray:
    """Complex ``(...)`` array -> float32 ``(..., 2)`` with (real, imaginary) channels."""
    return np.stack([z.real, z.imag], axis=-1).astype(np.float32)


def image_to_kspace_2ch(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Undersampled k-space of magnitude images, as the k-space CNN's 2-channel input.

    ``KSPACE_SCALE * M * fft2c(x)`` split into (real, imaginary) channels, with the
    project's centred orthonormal FFT (:func:`mrirecon.kspace.fft2c`). With an all-ones
    mask this is the fully sampled target of the k-space CNN.

    Args:
        images: real ``(N, H, W)`` image slices (float32 magnitude).
        masks: bool or {0, 1} ``(N, W)`` per-slice line masks, or one ``(W,)`` mask for
            all slices; True = phase-encode line (column) sampled.

    Returns:
        float32 ``(N, H, W, 2)`` scaled k-space; unsampled columns are exactly 0.

    Raises:
        ValueError: if ``images`` is not 3D or the mask shape does not match.
    """
    images = np.asarray(images)
    masks = np.asarray(masks)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {images.shape}")
    n, _, w = images.shape
    if masks.shape == (w,):
        masks = np.broadcast_to(masks, (n, w))
    if masks.shape != (n, w):
        raise ValueError(f"masks must be ({n}, {w}) or ({w},) for images {images.shape}, got {masks.shape}")
    kspace = fft2c(images.astype(np.float64)) * masks.astype(np.float64)[:, None, :]
    return complex_to_channels(KSPACE_SCALE * kspace)


def kspace_to_image(kspace_2ch: np.ndarray) -> np.ndarray:
    """Magnitude image of 2-channel scaled k-space (inverse of :func:`image_to_kspace_2ch`).

    ``|ifft2c((k[..., 0] + i k[..., 1]) / KSPACE_SCALE)|`` with the project's centred
    orthonormal inverse FFT (:func:`mrirecon.kspace.ifft2c`).

    Args:
        kspace_2ch: real ``(N, H, W, 2)`` k-space in model units (also accepts
            ``(H, W, 2)``).

    Returns:
        float32 magnitude images ``(N, H, W)`` (or ``(H, W)``).

    Raises:
        ValueError: if the last axis does not have length 2.
    """
    kspace_2ch = np.asarray(kspace_2ch)
    if kspace_2ch.ndim < 3 or kspace_2ch.shape[-1] != 2:
        raise ValueError(f"kspace_2ch must be (N, H, W, 2), got shape {kspace_2ch.shape}")
    k = kspace_2ch.astype(np.float64)
    complex_k = (k[..., 0] + 1j * k[..., 1]) / KSPACE_SCALE
    return np.abs(ifft2c(complex_k)).astype(np.float32)


# --------------------------------------------------------------------------------------
# Keras layers
# --------------------------------------------------------------------------------------


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


def _roll2(x, shifts):
    """Roll ``x`` over its last two axes by ``shifts = (s_rows, s_cols)``."""
    return ops.roll(ops.roll(x, shifts[0], axis=-2), shifts[1], axis=-1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class KSpaceToImage(layers.Layer):
    """Keras version of :func:`kspace_to_image`: 2-channel scaled k-space -> magnitude.

    Computes ``|ifft2c(k / KSPACE_SCALE)|`` with ``keras.ops`` so it can sit inside a
    model (e.g. to train the k-space CNN with an image-domain loss). The centred
    convention matches :mod:`mrirecon.kspace`: ``ifftshift`` / ``fftshift`` are
    ``keras.ops.roll`` by ``-(n // 2)`` / ``n // 2``, and the orthonormal inverse FFT is
    ``conj(fft2(conj(k))) / sqrt(H W)`` (independent of the backend's ``ifft2`` scaling).

    The magnitude is ``sqrt(re^2 + im^2 + 1e-12)`` so its gradient stays finite where the
    image is exactly zero. Input ``(B, H, W, 2)`` with static ``H, W``; output
    ``(B, H, W, 1)``.
    """

    def __init__(self, scale: float = KSPACE_SCALE, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, kspace):
        height, width = kspace.shape[1], kspace.shape[2]
        real = kspace[..., 0] / self.scale
        imag = kspace[..., 1] / self.scale
        real = _roll2(real, (-(height // 2), -(width // 2)))
        imag = _roll2(imag, (-(height // 2), -(width // 2)))
        # ifft(x) = conj(fft(conj(x))) / N; the outer conj does not change the magnitude
        out_real, out_imag = ops.fft2((real, -imag))
        norm = float(np.sqrt(height * width))
        out_real = _roll2(out_real, (height // 2, width // 2)) / norm
        out_imag = _roll2(out_imag, (height // 2, width // 2)) / norm
        # +1e-12 keeps the gradient finite at zero magnitude (changes values by <= 1e-6)
        magnitude = ops.sqrt(ops.square(out_real) + ops.square(out_imag) + 1e-12)
        return ops.expand_dims(magnitude, -1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


# --------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------


def _check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _conv_block(x, filters: int, name: str):
    """Two 3x3 'same' convolutions with ReLU."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
    return x


def _centred_fft2(real, imag, inverse: bool):
    """Orthonormal centred 2D (inverse) FFT of ``(B, H, W)`` real/imag tensors with ``keras.ops``.

    Same convention as :func:`mrirecon.kspace.fft2c` / :func:`~mrirecon.kspace.ifft2c`;
    the inverse is ``conj(fft2(conj(k))) / sqrt(H W)``, independent of the backend's
    ``ifft2`` scaling.
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ImageDataConsistency(layers.Layer):
    """Hard data consistency for a complex image: put the measured k-space lines back.

    ``x_dc = F^-1( m * y + (1 - m) * F(x) )`` with the project's centred orthonormal FFT,
    as in the data-consistency layers of cascaded/unrolled networks (Schlemper et al. 2018,
    IEEE TMI 37(2):491-503, noiseless case). Inputs: ``[image (B, H, W, 2) real/imag,
    measured k-space (B, H, W, 2) in model units (KSPACE_SCALE), mask (B, W)]``; output
    ``(B, H, W, 2)`` whose k-space equals the measured lines where ``m == 1``.
    """

    def __init__(self, scale: float = KSPACE_SCALE, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        image, measured, mask = inputs
        k_real, k_imag = _centred_fft2(image[..., 0], image[..., 1], inverse=False)
        column = ops.cast(ops.expand_dims(mask, 1), image.dtype)  # (B, 1, W)
        k_real = column * measured[..., 0] / self.scale + (1.0 - column) * k_real
        k_imag = column * measured[..., 1] / self.scale + (1.0 - column) * k_imag
        real, imag = _centred_fft2(k_real, k_imag, inverse=True)
        return ops.stack([real, imag], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _unet(x, levels: int, base_filters: int, channels: int, prefix: str):
    """U-Net body with a zero-initialised linear 1x1 head of ``channels``, added to ``x``."""
    skips = []
    h = x
    for level in range(levels - 1):
        h = _conv_block(h, base_filters * 2**level, name=f"{prefix}down{level}")
        skips.append(h)
        h = layers.MaxPooling2D(2, name=f"{prefix}down{level}_pool")(h)
    h = _conv_block(h, base_filters * 2 ** (levels - 1), name=f"{prefix}bottom")
    for level in reversed(range(levels - 1)):
        filters = base_filters * 2**level
        h = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{prefix}up{level}_upsample")(h)
        h = layers.Concatenate(name=f"{prefix}up{level}_concat")([h, skips[level]])
        h = _conv_block(h, filters, name=f"{prefix}up{level}")
    residual = layers.Conv2D(channels, 1, kernel_initializer="zeros", bias_initializer="zeros",
                             name=f"{prefix}residual")(h)
    return layers.Add(name=f"{prefix}reconstruction")([x, residual])


def build_image_unet(size: int, levels: int, base_filters: int = 16, data_consistency: bool = False,
                     cascades: int = 1) -> keras.Model:
    """Image-domain residual U-Net (Hyun et al. 2018; Ronneberger et al. 2015), optionally
    a cascade of U-Net + data-consistency blocks.

    Architecture: ``levels`` resolution scales. Each encoder level applies two 3x3 conv +
    ReLU (``base_filters * 2**level`` filters) then 2x2 max-pooling; the bottom level
    (``level = levels - 1``) has two 3x3 convs and no pooling; each decoder level
    upsamples with a 2x2 stride-2 transposed convolution, concatenates the encoder skip
    features and applies two 3x3 conv + ReLU. A zero-initialised linear 1x1 convolution
    gives the residual that is *added to the input*, so the untrained network is the
    identity. ``levels=1`` is just two 3x3 convs + the 1x1 residual head.

    Without data consistency the network works on magnitudes: input ``"zero_filled"``
    ``(batch, size, size, 1)`` = ``|F^-1(M y)|``, output the magnitude image.

    With ``data_consistency`` it works on the complex image (real, imaginary channels), so
    the measured k-space can be put back exactly: inputs ``"zero_filled"`` ``(batch, size,
    size, 2)`` = ``F^-1(M y)``, ``"kspace"`` ``(batch, size, size, 2)`` = measured ``M y``
    (model units, :func:`image_to_kspace_2ch`) and ``"mask"`` ``(batch, size)``; then
    ``cascades`` times: U-Net (residual) -> :class:`ImageDataConsistency` (in the spirit of
    unrolled networks, Schlemper et al. 2018). Output ``(batch, size, size, 2)``, the
    complex image; take its magnitude for metrics.

    Args:
        size: image side ``H = W`` (pixels); must be divisible by ``2**(levels - 1)``.
        levels: number of U-Net levels (resolution scales), ``>= 1``.
        base_filters: filters at the first level, doubled at each deeper level.
        data_consistency: complex input/output with a data-consistency step after each block.
        cascades: number of U-Net + data-consistency blocks (only with ``data_consistency``).

    Returns:
        Uncompiled ``keras.Model`` named ``"image_unet"`` (``"image_unet_dc"`` with data consistency).

    Raises:
        ValueError: if ``size``, ``levels``, ``base_filters`` or ``cascades`` is not a positive
            integer, ``size`` is not divisible by ``2**(levels - 1)``, or ``cascades > 1``
            without data consistency.
    """
    size = _check_positive_int("size", size)
    levels = _check_positive_int("levels", levels)
    base_filters = _check_positive_int("base_filters", base_filters)
    cascades = _check_positive_int("cascades", cascades)
    if size % 2 ** (levels - 1):
        raise ValueError(f"size {size} is not divisible by 2**(levels - 1) = {2 ** (levels - 1)} for levels={levels}")
    if not data_consistency:
        if cascades != 1:
            raise ValueError("cascades > 1 needs data_consistency=True")
        inputs = keras.Input(shape=(size, size, 1), dtype="float32", name="zero_filled")
        return keras.Model(inputs, _unet(inputs, levels, base_filters, 1, ""), name="image_unet")
    image = keras.Input(shape=(size, size, 2), dtype="float32", name="zero_filled")
    kspace = keras.Input(shape=(size, size, 2), dtype="float32", name="kspace")
    mask = keras.Input(shape=(size,), dtype="float32", name="mask")
    x = image
    for block in range(cascades):
        prefix = f"c{block}_" if cascades > 1 else ""
        x = _unet(x, levels, base_filters, 2, prefix)
        x = ImageDataConsistency(name=f"{prefix}data_consistency")([x, kspace, mask])
    return keras.Model([image, kspace, mask], x, name="image_unet_dc")


def build_kspace_cnn(size: int, layers: int, filters: int = 32, data_consistency: bool = True) -> keras.Model:
    """K-space completion CNN: predicts the missing phase-encode lines.

    ``layers`` 3x3 'same' convolutions: ``layers - 1`` with ``filters`` channels and ReLU,
    the last linear with 2 channels and zero-initialised. Their input is
    ``[k_re, k_im, mask]`` (the mask broadcast over rows, so the network sees the sampling
    pattern); their output is added to the input k-space (residual), and with
    ``data_consistency`` the measured lines are put back.

    Scaling: inputs and outputs are ``KSPACE_SCALE * fft2c(x)`` (real, imag) as made by
    :func:`image_to_kspace_2ch`; use an all-ones mask there for the training target and
    :func:`kspace_to_image` (or :class:`KSpaceToImage`) to get magnitude images back.

    Args:
        size: k-space side ``H = W``.
        layers: number of convolution layers, ``>= 2``.
        filters: channels of the hidden convolutions.
        data_consistency: if True, ``out = m * k_in + (1 - m) * k_pred`` per column, so the
            output equals the input exactly on sampled lines.

    Returns:
        Uncompiled ``keras.Model`` named ``"kspace_cnn"`` with inputs
        ``[kspace (batch, size, size, 2) float32, mask (batch, size) float32 in {0, 1}]``
        (input names ``"kspace"``, ``"mask"``; one flag per column) and output
        ``(batch, size, size, 2)`` float32 completed k-space in the same scaled units.

    Raises:
        ValueError: if ``size`` or ``filters`` is not a positive integer or ``layers < 2``.
    """
    size = _check_positive_int("size", size)
    n_layers = _check_positive_int("layers", layers, minimum=2)
    filters = _check_positive_int("filters", filters)

    kspace = keras.Input(shape=(size, size, 2), dtype="float32", name="kspace")
    mask = keras.Input(shape=(size,), dtype="float32", name="mask")
    x = KSpaceFeatures(name="features")([kspace, mask])
    for i in range(n_layers - 1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
    residual = keras.layers.Conv2D(
        2, 3, padding="same", kernel_initializer="zeros", bias_initializer="zeros", name=f"conv{n_layers - 1}"
    )(x)
    outputs = keras.layers.Add(name="prediction")([kspace, residual])
    if data_consistency:
        outputs = KSpaceDataConsistency(name="data_consistency")([outputs, kspace, mask])
    return keras.Model([kspace, mask], outputs, name="kspace_cnn")
