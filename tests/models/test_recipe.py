"""A grid point's recipe (mrirecon.models.recipe): built from params, stored in spec.json, compared with params."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrirecon.config import ModelSettings, load_params
from mrirecon.grid import GridPoint
from mrirecon.models.checkpoint import ModelSpec, read_spec, save_checkpoint
from mrirecon.models.recipe import FFT_CONVENTION, Recipe, recipe_differences, recipe_for, training_pixel_mm
from mrirecon.models.training import build_model

ROOT = Path(__file__).resolve().parents[2]


def test_recipe_of_the_default_params_names_the_mask_normalisation_and_pixel_size():
    params = load_params(ROOT / "params.yaml")
    recipe = recipe_for(params, "high", True, (2.0, 1.5))
    assert (recipe.acceleration, recipe.center_fraction, recipe.mask_type, recipe.mask_seed) == (
        8.0,
        0.04,
        "random",
        1234,
    )
    assert (recipe.percentile, recipe.size, recipe.pixel_mm, recipe.window_mm) == (99.5, 128, (2.0, 1.5), (20.0, 70.0))
    assert recipe.synthetic_phase is True and recipe.phase_seed == 0 and recipe.fft == FFT_CONVENTION
    assert recipe.as_params()["recipe.acceleration"] == "8.0"
    assert recipe_differences(recipe, params) == []


def test_recipe_differences_name_each_disagreeing_key():
    params = load_params(ROOT / "params.yaml")
    recipe = recipe_for(params, "medium", False, (2.0, 2.0))
    changed = params.model_copy(
        update={"slices": params.slices.model_copy(update={"percentile": 99.0, "pixel_mm": 1.0})}
    )
    assert recipe_differences(recipe, changed) == [
        "slices.percentile: model 99.5, params.yaml 99.0",
        "slices.pixel_mm: model [2.0, 2.0], params.yaml 1.0",
    ]
    gone = params.model_copy(update={"masks": params.masks.model_copy(update={"intensities": {}})})
    assert recipe_differences(recipe, gone) == ["masks.intensities: model intensity 'medium' not in params.yaml"]


def test_training_pixel_mm_is_the_median_of_the_train_slices(tmp_path):
    path = tmp_path / "slices.parquet"
    table = pa.table(
        {
            "split": ["train", "train", "train", "test"],
            "voxel_mm": [[1.0, 2.0, 3.0], [1.0, 2.5, 3.0], [1.5, 2.0, 3.0], [9.0, 9.0, 9.0]],
        }
    )
    pq.write_table(table, path)
    assert training_pixel_mm(path) == (2.0, 1.0)  # (row = Y, col = X)
    pq.write_table(table.filter(pa.compute.equal(table["split"], "test")), path)
    with pytest.raises(ValueError, match="no train slices"):
        training_pixel_mm(path)


def test_spec_json_round_trips_the_recipe(tmp_path):
    params = load_params(ROOT / "params.yaml")
    point = GridPoint(model="image", layers=2, batch_size=8, epochs=3, intensity="low")
    recipe = recipe_for(params, "low", False, (2.0, 2.0))
    spec = ModelSpec(point, ModelSettings(base_filters=4), 32, "abc", recipe)
    save_checkpoint(build_model(point, 32, spec.settings), spec, tmp_path)
    assert read_spec(tmp_path) == spec and isinstance(read_spec(tmp_path).recipe, Recipe)


def test_params_following_takes_every_recipe_setting_and_reports_the_changed_params_in_one_line():
    from mrirecon.models.recipe import params_following, recipe_mismatch

    params = load_params(ROOT / "params.yaml")
    recipes = [recipe_for(params, "medium", False, (1.5, 1.5)), recipe_for(params, "high", True, (1.5, 1.5))]
    assert recipe_mismatch(params, recipes, "following the recipe") is None
    masks = params.masks.model_copy(
        update={"intensities": {"medium": params.masks.intensities["medium"].model_copy(update={"acceleration": 5.0})}}
    )
    changed = params.model_copy(
        update={"slices": params.slices.model_copy(update={"percentile": 99.0, "size": 64}), "masks": masks}
    )
    assert recipe_mismatch(changed, recipes, "following the recipe") == (
        "params.yaml differs from the trained models' recipe (following the recipe): "
        "masks.intensities.medium.acceleration: model 4.0, params.yaml 5.0; "
        "slices.percentile: model 99.5, params.yaml 99.0; slices.size: model 128, params.yaml 64; "
        "masks.intensities: model intensity 'high' not in params.yaml"
    )
    followed = params_following(changed, recipes)
    assert (followed.slices.percentile, followed.slices.size, followed.slices.pixel_mm) == (99.5, 128, 1.5)
    assert {k: (v.acceleration, v.center_fraction) for k, v in followed.masks.intensities.items()} == {
        "medium": (4.0, 0.08),
        "high": (8.0, 0.04),
    }
    assert all(recipe_differences(r, followed) == [] for r in recipes)
    other = recipes[0].model_copy(update={"percentile": 98.0})
    with pytest.raises(ValueError, match="recipes disagree on percentile: 98.0, 99.5"):
        params_following(params, [recipes[1], other])
