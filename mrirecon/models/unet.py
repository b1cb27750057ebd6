"""Image-domain residual U-Net (Hyun et al. 2018; Ronneberger et al. 2015) and its data-consistency cascade.

The network maps the zero-filled magnitude image ``|F^-1(M F(x))|`` to the fully sampled
magnitude image through a residual U-Net (Hyun et al. 2018, "Deep learning for undersampled
MRI reconstruction", Phys. Med. Biol. 63 135007; U-Net of Ronneberger et al. 2015, MICCAI,
arXiv:1505.04597). Tensors are ``(batch, H, W, 1)`` float32.

Data consistency: for the magnitude U-Net exact data consistency is impossible (the phase of
the image is not an input, so the measured k-space cannot be re-imposed); with
``data_consistency=True`` the U-Net instead takes the complex zero-filled image (real,
imaginary channels) and ends with an exact data-consistency step
(:class:`mrirecon.models.layers.ImageDataConsistency`), optionally as a cascade.

Initialisation: the final 1x1 convolution is zero-initialised, so an untrained model is the
identity map (it returns the zero-filled image): training starts from the zero-filled baseline.
The builder returns an *uncompiled* :class:`keras.Model` (the caller chooses optimiser and loss).
"""

from __future__ import annotations

import keras
from keras import layers

from mrirecon.models.layers import ImageDataConsistency, Magnitude, positive_int


def _conv_block(x, filters: int, name: str):
    """Two 3x3 'same' convolutions with ReLU."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
    return x


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
    residual = layers.Conv2D(
        channels, 1, kernel_initializer="zeros", bias_initializer="zeros", name=f"{prefix}residual"
    )(h)
    return layers.Add(name=f"{prefix}reconstruction")([x, residual])


def _magnitude_refinement(x, filters: int):
    """Magnitude refinement after the last data-consistency step: ``|x|`` plus a residual from two 3x3 conv +
    ReLU layers on ``[re, im, |x|]`` and a zero-initialised 1x1 head (identity when untrained).

    The magnitude of a data-consistent complex image keeps a rectified residual where the true image is
    dark (|noise| > 0 has a positive mean), which costs SSIM in the background; this block can learn to
    remove it. Output ``(batch, H, W, 1)``.
    """
    magnitude = Magnitude(name="magnitude")(x)
    h = layers.Concatenate(name="refine_input")([x, magnitude])
    for i in (1, 2):
        h = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"refine_conv{i}")(h)
    residual = layers.Conv2D(1, 1, kernel_initializer="zeros", bias_initializer="zeros", name="refine_residual")(h)
    return layers.Add(name="refined_magnitude")([magnitude, residual])


def build_image_unet(
    size: int,
    levels: int,
    base_filters: int = 16,
    data_consistency: bool = False,
    cascades: int = 1,
    refine_filters: int = 0,
) -> keras.Model:
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
    (model units, :data:`mrirecon.models.transforms.KSPACE_SCALE`) and ``"mask"`` ``(batch, size)``;
    then ``cascades`` times: U-Net (residual) -> :class:`~mrirecon.models.layers.ImageDataConsistency`
    (in the spirit of unrolled networks, Schlemper et al. 2018). Output ``(batch, size, size, 2)``,
    the complex image; take its magnitude for metrics. With ``refine_filters > 0`` a small magnitude
    refinement CNN follows the last data-consistency step (:func:`_magnitude_refinement`) and the output is
    the magnitude ``(batch, size, size, 1)``.

    Args:
        size: image side ``H = W`` (pixels); must be divisible by ``2**(levels - 1)``.
        levels: number of U-Net levels (resolution scales), ``>= 1``.
        base_filters: filters at the first level, doubled at each deeper level.
        data_consistency: complex input/output with a data-consistency step after each block.
        cascades: number of U-Net + data-consistency blocks (only with ``data_consistency``).
        refine_filters: filters of the magnitude refinement after the last block (0: none; only with
            ``data_consistency``).

    Returns:
        Uncompiled ``keras.Model`` named ``"image_unet"`` (``"image_unet_dc"`` with data consistency).

    Raises:
        ValueError: if ``size``, ``levels``, ``base_filters`` or ``cascades`` is not a positive
            integer, ``size`` is not divisible by ``2**(levels - 1)``, or ``cascades > 1``
            without data consistency.
    """
    size = positive_int("size", size)
    levels = positive_int("levels", levels)
    base_filters = positive_int("base_filters", base_filters)
    cascades = positive_int("cascades", cascades)
    if size % 2 ** (levels - 1):
        raise ValueError(f"size {size} is not divisible by 2**(levels - 1) = {2 ** (levels - 1)} for levels={levels}")
    if not data_consistency:
        if cascades != 1:
            raise ValueError("cascades > 1 needs data_consistency=True")
        if refine_filters:
            raise ValueError("a magnitude refinement (refine_filters > 0) needs data_consistency=True")
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
    if refine_filters:
        x = _magnitude_refinement(x, refine_filters)
    return keras.Model([image, kspace, mask], x, name="image_unet_dc")
