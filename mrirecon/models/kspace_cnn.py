"""K-space CNN (the seed report's approach): fills in the missing phase-encode lines of k-space directly.

Inputs are the undersampled k-space as two real channels (real, imaginary), shape
``(batch, H, W, 2)`` in model units (``KSPACE_SCALE * M * fft2c(x)``, see
:mod:`mrirecon.models.transforms`), and the 1D line mask, shape ``(batch, W)`` float32 in
``{0, 1}`` (one flag per column = phase-encode line, the project's mask convention). The
output is the completed k-space in the same 2-channel units;
:func:`mrirecon.models.transforms.kspace_to_image` turns it into a magnitude image. The mask is
appended as a third input channel of the convolutions so the network knows which lines are measured.

Data consistency: ``data_consistency=True`` replaces the prediction on the sampled lines by the
measured values: ``out = m * k_in + (1 - m) * k_pred``, which returns the input values
bit-exactly where ``m == 1``.

Initialisation: the final convolution is zero-initialised, so an untrained model returns the
input k-space (i.e. the zero-filled reconstruction): training starts from the zero-filled
baseline. The builder returns an *uncompiled* :class:`keras.Model`.
"""

from __future__ import annotations

import keras

from mrirecon.models.layers import KSpaceDataConsistency, KSpaceFeatures, positive_int


def build_kspace_cnn(size: int, layers: int, filters: int = 32, data_consistency: bool = True) -> keras.Model:
    """K-space completion CNN: predicts the missing phase-encode lines.

    ``layers`` 3x3 'same' convolutions: ``layers - 1`` with ``filters`` channels and ReLU,
    the last linear with 2 channels and zero-initialised. Their input is
    ``[k_re, k_im, mask]`` (the mask broadcast over rows, so the network sees the sampling
    pattern); their output is added to the input k-space (residual), and with
    ``data_consistency`` the measured lines are put back.

    Scaling: inputs and outputs are ``KSPACE_SCALE * fft2c(x)`` (real, imag) (see
    :mod:`mrirecon.models.transforms`); the training target is the fully sampled k-space
    in the same units, and :func:`~mrirecon.models.transforms.kspace_to_image` gives the
    magnitude images back.

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
    size = positive_int("size", size)
    n_layers = positive_int("layers", layers, minimum=2)
    filters = positive_int("filters", filters)

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
