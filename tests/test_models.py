"""Shape, structure and sanity checks of mrirecon.models (small sizes, CPU)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mrirecon import models
from mrirecon.kspace import fft2c


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
    model = models.build_image_unet(size, levels, base_filters=4)
    assert model.name == "image_unet"
    assert model.input_shape == (None, size, size, 1)
    assert model.output_shape == (None, size, size, 1)
    x = np.random.default_rng(0).random((2, size, size, 1)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == x.shape


def test_image_unet_params_grow_with_levels():
    counts = [models.build_image_unet(32, levels, base_filters=4).count_params() for levels in (1, 2, 3, 4)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    # levels=1: two 3x3 convs (1->4, 4->4) and the 1x1 head (4->1)
    assert counts[0] == (9 * 1 * 4 + 4) + (9 * 4 * 4 + 4) + (4 + 1)


def test_image_unet_is_residual_identity_when_untrained():
    model = models.build_image_unet(32, 3, base_filters=4)
    x = np.random.default_rng(1).random((2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    _randomise(model)
    assert not np.allclose(model.predict(x, verbose=0), x)


def test_image_unet_invalid_arguments():
    with pytest.raises(ValueError, match="divisible"):
        models.build_image_unet(20, 4)
    with pytest.raises(ValueError):
        models.build_image_unet(32, 0)
    with pytest.raises(ValueError, match="cascades > 1 needs data_consistency"):
        models.build_image_unet(32, 2, cascades=3)


@pytest.mark.parametrize("cascades", [1, 3])
def test_image_unet_data_consistency_keeps_sampled_lines_exactly(cascades):
    from mrirecon.kspace import fft2c, ifft2c

    size = 32
    rng = np.random.default_rng(3)
    model = models.build_image_unet(size, 2, base_filters=4, data_consistency=True, cascades=cascades)
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
    out = model.predict({"zero_filled": two(zero_filled), "kspace": two(measured * models.KSPACE_SCALE),
                         "mask": masks.astype(np.float32)}, verbose=0)
    k_out = fft2c(out[..., 0] + 1j * out[..., 1])
    sampled = np.broadcast_to(masks[:, None, :], k_out.shape)
    np.testing.assert_allclose(k_out[sampled], measured[sampled], atol=1e-5)
    assert not np.allclose(k_out[~sampled], 0, atol=1e-3)  # the network filled the other lines


def test_image_data_consistency_layer_matches_numpy():
    from mrirecon.kspace import fft2c, ifft2c

    rng = np.random.default_rng(4)
    image = rng.normal(size=(1, 16, 16)) + 1j * rng.normal(size=(1, 16, 16))
    measured = rng.normal(size=(1, 16, 16)) + 1j * rng.normal(size=(1, 16, 16))
    mask = np.zeros((1, 16), bool)
    mask[0, [2, 8, 9]] = True
    expected = ifft2c(np.where(mask[:, None, :], measured, fft2c(image)))
    two = lambda z: np.stack([z.real, z.imag], -1).astype(np.float32)  # noqa: E731
    out = np.asarray(models.ImageDataConsistency()([two(image), two(measured * models.KSPACE_SCALE),
                                                     mask.astype(np.float32)]))
    np.testing.assert_allclose(out[..., 0] + 1j * out[..., 1], expected, atol=1e-5)


@pytest.mark.parametrize("n_layers", [2, 3, 5])
def test_kspace_cnn_shapes(n_layers):
    model = models.build_kspace_cnn(16, n_layers, filters=8)
    assert model.name == "kspace_cnn"
    assert model.output_shape == (None, 16, 16, 2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == n_layers
    images, masks = _kspace_batch(3, 16)
    out = model.predict([models.image_to_kspace_2ch(images, masks), masks.astype(np.float32)], verbose=0)
    assert out.shape == (3, 16, 16, 2)


def test_kspace_cnn_invalid_arguments():
    with pytest.raises(ValueError):
        models.build_kspace_cnn(16, 1)


def test_kspace_cnn_data_consistency_is_exact():
    size = 16
    model = models.build_kspace_cnn(size, 3, filters=8, data_consistency=True)
    _randomise(model)
    images, masks = _kspace_batch(4, size, seed=3)
    kspace = models.image_to_kspace_2ch(images, masks)
    kspace += np.random.default_rng(4).normal(0, 1, kspace.shape).astype(np.float32)  # arbitrary values
    out = model.predict([kspace, masks.astype(np.float32)], verbose=0)
    sampled = np.broadcast_to(masks[:, None, :, None], out.shape)
    np.testing.assert_array_equal(out[sampled], kspace[sampled])
    assert not np.allclose(out[~sampled], kspace[~sampled])  # the network does change the rest
    # a bool mask works too
    np.testing.assert_array_equal(model.predict([kspace, masks], verbose=0), out)


def test_kspace_cnn_without_data_consistency_changes_sampled_lines():
    model = models.build_kspace_cnn(16, 3, filters=8, data_consistency=False)
    images, masks = _kspace_batch(2, 16)
    kspace = models.image_to_kspace_2ch(images, masks)
    np.testing.assert_array_equal(model.predict([kspace, masks], verbose=0), kspace)  # zero-init head
    _randomise(model)
    sampled = np.broadcast_to(masks[:, None, :, None], kspace.shape)
    assert not np.allclose(model.predict([kspace, masks], verbose=0)[sampled], kspace[sampled])


def test_kspace_helpers_round_trip_and_scaling():
    images, masks = _kspace_batch(3, 16)
    full = models.image_to_kspace_2ch(images, np.ones(16, dtype=bool))
    assert full.dtype == np.float32 and full.shape == (3, 16, 16, 2)
    np.testing.assert_allclose(models.kspace_to_image(full), images, atol=1e-5)
    expected = models.KSPACE_SCALE * fft2c(images[0].astype(np.float64))
    np.testing.assert_allclose(full[0, ..., 0] + 1j * full[0, ..., 1], expected, rtol=1e-5, atol=1e-4)
    under = models.image_to_kspace_2ch(images, masks)
    assert np.all(under[~masks[:, None, :].repeat(16, axis=1)] == 0)
    with pytest.raises(ValueError):
        models.image_to_kspace_2ch(images, masks[:, :15])
    with pytest.raises(ValueError):
        models.kspace_to_image(full[..., :1])


@pytest.mark.parametrize("shape", [(16, 16), (15, 12)])
def test_kspace_to_image_layer_matches_numpy(shape):
    rng = np.random.default_rng(5)
    kspace = rng.normal(0, 5, (2, *shape, 2)).astype(np.float32)
    out = np.asarray(models.KSpaceToImage()(kspace))
    np.testing.assert_allclose(out[..., 0], models.kspace_to_image(kspace), atol=1e-5)


def test_kspace_cnn_save_and_load(tmp_path):
    model = models.build_kspace_cnn(16, 2, filters=4)
    _randomise(model)
    path = tmp_path / "kspace_cnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images, masks = _kspace_batch(2, 16)
    inputs = [models.image_to_kspace_2ch(images, masks), masks.astype(np.float32)]
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-6)


def test_tiny_fit_runs_for_both_models():
    keras.utils.set_random_seed(0)
    images, masks = _kspace_batch(8, 16, seed=6)
    zero_filled = models.kspace_to_image(models.image_to_kspace_2ch(images, masks))

    unet = models.build_image_unet(16, 2, base_filters=4)
    unet.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    history = unet.fit(zero_filled[..., None], images[..., None], batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))

    cnn = models.build_kspace_cnn(16, 3, filters=8)
    cnn.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    inputs = [models.image_to_kspace_2ch(images, masks), masks.astype(np.float32)]
    target = models.image_to_kspace_2ch(images, np.ones(16, dtype=bool))
    history = cnn.fit(inputs, target, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # training moved the zero-initialised head away from the identity
    assert np.any(cnn.get_layer("conv2").get_weights()[0] != 0)
