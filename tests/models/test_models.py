"""Shape, structure and sanity checks of the networks and layers of mrirecon.models (small sizes, CPU)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from mrirecon.models.kspace_cnn import build_kspace_cnn
from mrirecon.models.layers import ImageDataConsistency, centred_fft2
from mrirecon.models.transforms import KSPACE_SCALE, complex_to_channels, kspace_to_image
from mrirecon.models.unet import build_image_unet
from mrirecon.mri.fft import fft2c


def image_to_kspace_2ch(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Undersampled k-space of magnitude images, as the k-space CNN's 2-channel input.

    ``KSPACE_SCALE * M * fft2c(x)`` split into (real, imaginary) channels, with the
    project's centred orthonormal FFT. With an all-ones mask this is the fully sampled
    target of the k-space CNN.

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


class KSpaceToImage(keras.layers.Layer):
    """Keras version of :func:`kspace_to_image`: 2-channel scaled k-space ``(B, H, W, 2)`` -> magnitude
    ``(B, H, W, 1)``, ``sqrt(re^2 + im^2 + 1e-12)`` of the centred inverse FFT (:func:`centred_fft2`)."""

    def call(self, kspace):
        real, imag = centred_fft2(kspace[..., 0] / KSPACE_SCALE, kspace[..., 1] / KSPACE_SCALE, inverse=True)
        return ops.expand_dims(ops.sqrt(ops.square(real) + ops.square(imag) + 1e-12), -1)


def _randomise(model: keras.Model, seed: int = 0) -> None:
    """Give every weight (including the zero-initialised head) random non-zero values."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in model.get_weights()])


def _kspace_batch(n: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.random((n, size, size)).astype(np.float32)
    masks = rng.random((n, size)) < 0.4
    masks[:, size // 2] = True
    return images, masks


@pytest.mark.parametrize("levels, size", [(1, 16), (2, 16), (3, 32), (4, 32)])
def test_image_unet_shapes(levels, size):
    model = build_image_unet(size, levels, base_filters=4)
    assert model.name == "image_unet"
    assert model.input_shape == (None, size, size, 1)
    assert model.output_shape == (None, size, size, 1)
    x = np.random.default_rng(0).random((2, size, size, 1)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == x.shape


def test_image_unet_params_grow_with_levels():
    counts = [build_image_unet(32, levels, base_filters=4).count_params() for levels in (1, 2, 3, 4)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    # levels=1: two 3x3 convs (1->4, 4->4) and the 1x1 head (4->1)
    assert counts[0] == (9 * 1 * 4 + 4) + (9 * 4 * 4 + 4) + (4 + 1)


def test_image_unet_is_residual_identity_when_untrained():
    model = build_image_unet(32, 3, base_filters=4)
    x = np.random.default_rng(1).random((2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    _randomise(model)
    assert not np.allclose(model.predict(x, verbose=0), x)


def test_image_unet_invalid_arguments():
    with pytest.raises(ValueError, match="divisible"):
        build_image_unet(20, 4)
    with pytest.raises(ValueError):
        build_image_unet(32, 0)
    with pytest.raises(ValueError, match="cascades > 1 needs data_consistency"):
        build_image_unet(32, 2, cascades=3)


@pytest.mark.parametrize("cascades", [1, 3])
def test_image_unet_data_consistency_keeps_sampled_lines_exactly(cascades):
    from mrirecon.mri.fft import fft2c, ifft2c

    size = 32
    rng = np.random.default_rng(3)
    model = build_image_unet(size, 2, base_filters=4, data_consistency=True, cascades=cascades)
    assert model.name == "image_unet_dc" and model.output_shape == (None, size, size, 2)
    _randomise(model)
    images = rng.random((2, size, size)).astype(np.float32)
    phase = np.exp(1j * rng.uniform(-1, 1, (2, size, size)))
    truth = images * phase  # complex, non-Hermitian k-space
    masks = np.zeros((2, size), bool)
    masks[:, [3, 10, 15, 16, 17, 25]] = True
    measured = fft2c(truth) * masks[:, None, :]
    zero_filled = ifft2c(measured)
    two = lambda z: np.stack([z.real, z.imag], -1).astype(np.float32)  # noqa: E731
    out = model.predict(
        {"zero_filled": two(zero_filled), "kspace": two(measured * KSPACE_SCALE), "mask": masks.astype(np.float32)},
        verbose=0,
    )
    k_out = fft2c(out[..., 0] + 1j * out[..., 1])
    sampled = np.broadcast_to(masks[:, None, :], k_out.shape)
    np.testing.assert_allclose(k_out[sampled], measured[sampled], atol=1e-5)
    assert not np.allclose(k_out[~sampled], 0, atol=1e-3)  # the network filled the other lines


def test_image_data_consistency_layer_matches_numpy():
    from mrirecon.mri.fft import fft2c, ifft2c

    rng = np.random.default_rng(4)
    image = rng.normal(size=(1, 16, 16)) + 1j * rng.normal(size=(1, 16, 16))
    measured = rng.normal(size=(1, 16, 16)) + 1j * rng.normal(size=(1, 16, 16))
    mask = np.zeros((1, 16), bool)
    mask[0, [2, 8, 9]] = True
    expected = ifft2c(np.where(mask[:, None, :], measured, fft2c(image)))
    two = lambda z: np.stack([z.real, z.imag], -1).astype(np.float32)  # noqa: E731
    out = np.asarray(ImageDataConsistency()([two(image), two(measured * KSPACE_SCALE), mask.astype(np.float32)]))
    np.testing.assert_allclose(out[..., 0] + 1j * out[..., 1], expected, atol=1e-5)


@pytest.mark.parametrize("n_layers", [2, 3, 5])
def test_kspace_cnn_shapes(n_layers):
    model = build_kspace_cnn(16, n_layers, filters=8)
    assert model.name == "kspace_cnn"
    assert model.output_shape == (None, 16, 16, 2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == n_layers
    images, masks = _kspace_batch(3, 16)
    out = model.predict([image_to_kspace_2ch(images, masks), masks.astype(np.float32)], verbose=0)
    assert out.shape == (3, 16, 16, 2)


def test_kspace_cnn_invalid_arguments():
    with pytest.raises(ValueError):
        build_kspace_cnn(16, 1)


def test_kspace_cnn_data_consistency_is_exact():
    size = 16
    model = build_kspace_cnn(size, 3, filters=8, data_consistency=True)
    _randomise(model)
    images, masks = _kspace_batch(4, size, seed=3)
    kspace = image_to_kspace_2ch(images, masks)
    kspace += np.random.default_rng(4).normal(0, 1, kspace.shape).astype(np.float32)  # arbitrary values
    out = model.predict([kspace, masks.astype(np.float32)], verbose=0)
    sampled = np.broadcast_to(masks[:, None, :, None], out.shape)
    np.testing.assert_array_equal(out[sampled], kspace[sampled])
    assert not np.allclose(out[~sampled], kspace[~sampled])  # the network does change the rest
    # a bool mask works too
    np.testing.assert_array_equal(model.predict([kspace, masks], verbose=0), out)


def test_kspace_cnn_without_data_consistency_changes_sampled_lines():
    model = build_kspace_cnn(16, 3, filters=8, data_consistency=False)
    images, masks = _kspace_batch(2, 16)
    kspace = image_to_kspace_2ch(images, masks)
    np.testing.assert_array_equal(model.predict([kspace, masks], verbose=0), kspace)  # zero-init head
    _randomise(model)
    sampled = np.broadcast_to(masks[:, None, :, None], kspace.shape)
    assert not np.allclose(model.predict([kspace, masks], verbose=0)[sampled], kspace[sampled])


def test_kspace_helpers_round_trip_and_scaling():
    images, masks = _kspace_batch(3, 16)
    full = image_to_kspace_2ch(images, np.ones(16, dtype=bool))
    assert full.dtype == np.float32 and full.shape == (3, 16, 16, 2)
    np.testing.assert_allclose(kspace_to_image(full), images, atol=1e-5)
    expected = KSPACE_SCALE * fft2c(images[0].astype(np.float64))
    np.testing.assert_allclose(full[0, ..., 0] + 1j * full[0, ..., 1], expected, rtol=1e-5, atol=1e-4)
    under = image_to_kspace_2ch(images, masks)
    assert np.all(under[~masks[:, None, :].repeat(16, axis=1)] == 0)
    with pytest.raises(ValueError):
        image_to_kspace_2ch(images, masks[:, :15])
    with pytest.raises(ValueError):
        kspace_to_image(full[..., :1])


@pytest.mark.parametrize("shape", [(16, 16), (15, 12)])
def test_kspace_to_image_layer_matches_numpy(shape):
    rng = np.random.default_rng(5)
    kspace = rng.normal(0, 5, (2, *shape, 2)).astype(np.float32)
    out = np.asarray(KSpaceToImage()(kspace))
    np.testing.assert_allclose(out[..., 0], kspace_to_image(kspace), atol=1e-5)


def test_kspace_cnn_save_and_load(tmp_path):
    model = build_kspace_cnn(16, 2, filters=4)
    _randomise(model)
    path = tmp_path / "kspace_cnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images, masks = _kspace_batch(2, 16)
    inputs = [image_to_kspace_2ch(images, masks), masks.astype(np.float32)]
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-6)


def test_tiny_fit_runs_for_both_models():
    keras.utils.set_random_seed(0)
    images, masks = _kspace_batch(8, 16, seed=6)
    zero_filled = kspace_to_image(image_to_kspace_2ch(images, masks))

    unet = build_image_unet(16, 2, base_filters=4)
    unet.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    history = unet.fit(zero_filled[..., None], images[..., None], batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))

    cnn = build_kspace_cnn(16, 3, filters=8)
    cnn.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    inputs = [image_to_kspace_2ch(images, masks), masks.astype(np.float32)]
    target = image_to_kspace_2ch(images, np.ones(16, dtype=bool))
    history = cnn.fit(inputs, target, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # training moved the zero-initialised head away from the identity
    assert np.any(cnn.get_layer("conv2").get_weights()[0] != 0)


def test_layer_names_and_order_are_stable():
    """Saved weights are matched to layers by position and class: these lists must not change."""
    assert [layer.name for layer in build_kspace_cnn(16, 3, 8).layers] == [
        "kspace",
        "mask",
        "features",
        "conv0",
        "conv1",
        "conv2",
        "prediction",
        "data_consistency",
    ]
    assert [layer.name for layer in build_image_unet(16, 2, 4).layers] == [
        "zero_filled",
        "down0_conv1",
        "down0_conv2",
        "down0_pool",
        "bottom_conv1",
        "bottom_conv2",
        "up0_upsample",
        "up0_concat",
        "up0_conv1",
        "up0_conv2",
        "residual",
        "reconstruction",
    ]
    cascade = [layer.name for layer in build_image_unet(16, 2, 4, data_consistency=True, cascades=2).layers]
    assert cascade[12:15] == ["kspace", "mask", "c0_data_consistency"] and cascade[-1] == "c1_data_consistency"
    assert type(build_kspace_cnn(16, 2).get_layer("features")).__name__ == "KSpaceFeatures"
    assert keras.saving.get_registered_name(ImageDataConsistency) == "mrirecon>ImageDataConsistency"


@pytest.mark.parametrize("shape", [(16, 16), (15, 12)])
def test_centred_fft2_matches_numpy_both_ways(shape):
    from mrirecon.mri.fft import ifft2c

    rng = np.random.default_rng(6)
    z = rng.normal(size=(2, *shape)) + 1j * rng.normal(size=(2, *shape))
    real, imag = centred_fft2(z.real.astype(np.float32), z.imag.astype(np.float32), inverse=False)
    np.testing.assert_allclose(np.asarray(real) + 1j * np.asarray(imag), fft2c(z), atol=1e-4)
    real, imag = centred_fft2(z.real.astype(np.float32), z.imag.astype(np.float32), inverse=True)
    np.testing.assert_allclose(np.asarray(real) + 1j * np.asarray(imag), ifft2c(z), atol=1e-4)


def test_magnitude_refinement_starts_as_the_magnitude_of_the_data_consistent_image():
    rng = np.random.default_rng(0)
    size = 16
    image = rng.normal(size=(2, size, size, 2)).astype("float32")
    kspace = rng.normal(size=(2, size, size, 2)).astype("float32")
    mask = (rng.random((2, size)) > 0.5).astype("float32")
    plain = build_image_unet(size, 2, 4, data_consistency=True)
    refined = build_image_unet(size, 2, 4, data_consistency=True, refine_filters=4)
    assert refined.output_shape == (None, size, size, 1) and plain.output_shape == (None, size, size, 2)
    for layer in plain.layers:  # same U-Net + DC weights in both
        if layer.weights:
            refined.get_layer(layer.name).set_weights(layer.get_weights())
    complex_out = plain.predict([image, kspace, mask], verbose=0)
    magnitude = refined.predict([image, kspace, mask], verbose=0)[..., 0]
    np.testing.assert_allclose(magnitude, np.hypot(complex_out[..., 0], complex_out[..., 1]), atol=1e-5)
    with pytest.raises(ValueError, match="refinement .* needs data_consistency"):
        build_image_unet(size, 2, 4, refine_filters=4)
