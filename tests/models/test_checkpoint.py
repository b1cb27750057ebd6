"""Checkpoint I/O (mrirecon.models.checkpoint): spec.json round trip and weights (small sizes, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mrirecon.config import ModelSettings
from mrirecon.grid import GridPoint
from mrirecon.models.checkpoint import ModelSpec, load_trained_model, read_spec, save_checkpoint
from mrirecon.models.training import build_model


def _randomise(model, seed: int = 0) -> None:
    """Give every weight (including the zero-initialised head) random non-zero values."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in model.get_weights()])


@pytest.mark.parametrize(
    "point,settings",
    [
        (
            GridPoint("kspace", 3, 4, 2, "medium", True),
            ModelSettings(learning_rate=2e-3, kspace_filters=8, early_stopping_patience=3, seed=7),
        ),
        (GridPoint("image", 2, 8, 1, "high"), ModelSettings(base_filters=4, image_data_consistency=True, cascades=2)),
    ],
)
def test_checkpoint_round_trip_gives_the_same_point_settings_and_outputs(tmp_path, point, settings):
    model = build_model(point, 16, settings)
    _randomise(model)
    save_checkpoint(model, ModelSpec(point, settings, 16, "run-1"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5", "spec.json"]
    # spec.json content and key order as written before the typed spec (downstream readers depend on it)
    assert json.loads((tmp_path / "spec.json").read_text()) == {
        "point": {
            "model": point.model,
            "layers": point.layers,
            "batch_size": point.batch_size,
            "epochs": point.epochs,
            "intensity": point.intensity,
            "synthetic_phase": point.synthetic_phase,
        },
        "settings": {
            "learning_rate": settings.learning_rate,
            "base_filters": settings.base_filters,
            "kspace_filters": settings.kspace_filters,
            "data_consistency": settings.data_consistency,
            "early_stopping_patience": settings.early_stopping_patience,
            "seed": settings.seed,
            "image_data_consistency": settings.image_data_consistency,
            "cascades": settings.cascades,
            "refine_filters": settings.refine_filters,
            "resample_masks": settings.resample_masks,
        },
        "size": 16,
        "run_id": "run-1",
    }
    text = (tmp_path / "spec.json").read_text()
    assert list(json.loads(text)) == ["point", "settings", "size", "run_id"]
    assert list(json.loads(text)["settings"]) == list(ModelSettings.model_fields)

    loaded, spec = load_trained_model(tmp_path)
    assert spec == ModelSpec(point, settings, 16, "run-1") == read_spec(tmp_path)
    assert spec.point == point and spec.settings == settings and isinstance(spec.settings, ModelSettings)
    inputs = [
        np.random.default_rng(8).normal(size=(2, *shape[1:])).astype(np.float32)
        for shape in (model.input_shape if isinstance(model.input_shape, list) else [model.input_shape])
    ]
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))


def test_spec_json_written_before_the_typed_spec_still_reads(tmp_path):
    old = {
        "point": {
            "model": "image",
            "layers": 3,
            "batch_size": 16,
            "epochs": 20,
            "intensity": "medium",
            "synthetic_phase": False,
        },
        "settings": {
            "learning_rate": 0.001,
            "base_filters": 16,
            "kspace_filters": 32,
            "data_consistency": True,
            "early_stopping_patience": None,
            "seed": 0,
            "image_data_consistency": False,
            "cascades": 1,
            "refine_filters": 0,
        },
        "size": 128,
        "run_id": "0123abcd",
    }
    (tmp_path / "spec.json").write_text(json.dumps(old, indent=2))
    spec = read_spec(tmp_path)
    assert spec == ModelSpec(GridPoint("image", 3, 16, 20, "medium"), ModelSettings(), 128, "0123abcd")
    # settings added later (train.resample_masks) read as their defaults, which reproduce the old training
    assert spec.to_json() == {**old, "settings": {**old["settings"], "resample_masks": False}}
