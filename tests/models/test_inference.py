"""mrirecon.models.inference: reconstruction from measured k-space equals the simulated-measurement path."""

from __future__ import annotations

import numpy as np
import pytest

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet
from mrirecon.grid import GridPoint
from mrirecon.models.inference import build_model, reconstruct, reconstruct_kspace
from mrirecon.mri.forward import measure, zero_filled_magnitude


def _slices(n: int = 3, size: int = 16) -> SliceSet:
    rng = np.random.default_rng(4)
    masks = np.zeros((n, size), bool)
    masks[:, [1, 6, 7, 8, 9, 13]] = True
    masks[1, 3] = True  # one slice with a different mask
    images = rng.random((n, size, size)).astype(np.float32)
    return SliceSet(images, masks, [f"IXI{i:03d}-HH-0000" for i in range(n)], np.arange(n) + 40, 4.0, "medium", 0.125)


def _perturbed(model, seed: int = 0):
    """The network with its weights moved off their (near-identity) initialisation, so outputs are not trivial."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


@pytest.mark.parametrize(
    "kind,settings,synthetic_phase",
    [
        ("image", ModelSettings(base_filters=4), False),
        ("image", ModelSettings(base_filters=4, image_data_consistency=True, cascades=1, refine_filters=0), True),
        ("image", ModelSettings(base_filters=4, image_data_consistency=True, cascades=1, refine_filters=4), False),
        ("kspace", ModelSettings(kspace_filters=4), True),
    ],
)
def test_reconstruct_kspace_equals_reconstruct(kind, settings, synthetic_phase):
    data = _slices()
    model = _perturbed(build_model(GridPoint(kind, 2, 2, 1, "medium", synthetic_phase), 16, settings))
    expected = reconstruct(model, kind, data, settings=settings, synthetic_phase=synthetic_phase)
    measured, _ = measure(data, synthetic_phase, settings.seed)
    # as the MLflow model receives it: float32 real/imaginary parts and a float mask
    as_float32 = measured.real.astype(np.float32) + 1j * measured.imag.astype(np.float32)
    got = reconstruct_kspace(model, kind, as_float32, data.masks.astype(np.float32), settings)
    assert got.shape == (3, 16, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert np.max(np.abs(got - zero_filled_magnitude(measured))) > 1e-3  # the network did something


def test_reconstruct_kspace_refuses_wrong_shapes():
    settings = ModelSettings(kspace_filters=4)
    model = build_model(GridPoint("kspace", 2, 2, 1, "medium"), 16, settings)
    with pytest.raises(ValueError, match=r"k-space must be \(N, 16, 16\)"):
        reconstruct_kspace(model, "kspace", np.zeros((2, 16, 8), complex), np.ones((2, 8)), settings)
    with pytest.raises(ValueError, match=r"mask must be \(N, W\) = \(2, 16\)"):
        reconstruct_kspace(model, "kspace", np.zeros((2, 16, 16), complex), np.ones((3, 16)), settings)
