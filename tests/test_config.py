"""Parameter rules: every broken rule is refused at load time with the key and the rule."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from mrirecon.config import MIN_UNET_BOTTOM, ModelSettings, Params, ParamsError, load_params, unet_size_problem
from mrirecon.data.slices import SliceSelectionError, choose_axial_slices
from mrirecon.mri.subsample import Intensity

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "data": {"source": "sample", "limit": None, "strict": False},
    "slices": {"per_subject": 5, "size": 128},
    "split": {"fractions": {"train": 0.7, "val": 0.15, "test": 0.15}, "seed": 42},
    "masks": {
        "seed": 1,
        "type": "random",
        "intensities": {
            "low": {"acceleration": 2.0, "center_fraction": 0.16},
            "medium": {"acceleration": 4.0, "center_fraction": 0.08},
        },
    },
    "train": {
        "grid": {
            "model": ["image", "kspace"],
            "layers": [3],
            "batch_size": [16],
            "epochs": [2],
            "intensity": ["medium"],
        },
    },
}


def with_change(path: str, value) -> dict:
    """BASE with the dotted key ``path`` set to ``value``."""
    params = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value
    return params


def refused(params: dict, match: str) -> str:
    with pytest.raises(ValidationError) as info:
        Params.model_validate(params)
    text = str(info.value)
    assert match in text, text
    return text


@pytest.mark.parametrize("name", ["params.yaml", "params-quick.yaml"])
def test_repository_params_files_validate(name):
    params = load_params(ROOT / name)
    assert params.data.strict is False
    assert set(params.train.grid["intensity"]) <= set(params.masks.intensities)
    assert params.slices.size == 128


def test_base_is_valid_and_strict_defaults_to_false():
    params = Params.model_validate(BASE)
    assert params.data.strict is False
    assert Params.model_validate(with_change("data.strict", True)).data.strict is True
    refused(with_change("data.strict", "sometimes"), "data.strict")


def test_unknown_intensity_in_the_grid():
    text = refused(
        with_change("train.grid.intensity", ["medium", "extreme"]),
        "train.grid.intensity ['extreme'] not in masks.intensities ['low', 'medium']",
    )
    assert "extreme" in text


@pytest.mark.parametrize("acceleration", [0.5, 0.99, -2.0, float("nan"), float("inf")])
def test_acceleration_below_one_or_not_finite(acceleration):
    params = with_change("masks.intensities.low", {"acceleration": acceleration, "center_fraction": 0.01})
    refused(params, "masks.intensities.low.acceleration")


def test_acceleration_one_is_allowed():
    params = with_change("masks.intensities.low", {"acceleration": 1.0, "center_fraction": 0.5})
    assert Params.model_validate(params).masks.intensities["low"].acceleration == 1.0


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.0, 1.5])
def test_centre_fraction_outside_zero_one(fraction):
    params = with_change("masks.intensities.low", {"acceleration": 1.0, "center_fraction": fraction})
    refused(params, "masks.intensities.low.center_fraction")


def test_centre_fraction_larger_than_one_over_acceleration():
    params = with_change("masks.intensities.medium", {"acceleration": 4.0, "center_fraction": 0.3})
    refused(params, "center_fraction 0.3 is larger than 1/acceleration = 0.25")


def test_centre_lines_checked_against_the_slice_width():
    # round(128 * 0.2499) = 32 centre lines = W/R exactly: allowed
    ok = with_change("masks.intensities.medium", {"acceleration": 4.0, "center_fraction": 0.2499})
    Params.model_validate(ok)
    # cf = 0.246 <= 1/4.05 = 0.2469, but with 100-pixel slices round(24.6) = 25 lines > W/R = 24.7
    bad = with_change("masks.intensities.medium", {"acceleration": 4.05, "center_fraction": 0.246})
    bad["slices"]["size"] = 100
    bad["train"]["grid"]["layers"] = [2]
    refused(
        bad, "masks.intensities.medium: center_fraction 0.246 keeps 25 centre lines, more than W/R = 100/4.05 = 24.7"
    )
    # a centre fraction so small that no centre line is kept
    tiny = with_change("masks.intensities.low", {"acceleration": 2.0, "center_fraction": 0.003})
    refused(tiny, "keeps round(128 * 0.003) = 0 centre lines")


@pytest.mark.parametrize("axis", ["model", "layers", "batch_size", "epochs", "intensity"])
def test_empty_grid_axis(axis):
    refused(with_change(f"train.grid.{axis}", []), f"train.grid.{axis} is empty")


def test_missing_or_unknown_grid_axis():
    params = copy.deepcopy(BASE)
    params["train"]["grid"]["depth"] = params["train"]["grid"].pop("layers")
    refused(params, "missing ['layers'], unknown ['depth']")


@pytest.mark.parametrize(
    "axis,values,match",
    [
        ("model", ["image", "transformer"], "unknown kinds ['transformer']"),
        ("layers", [3, 0], "train.grid.layers values must be integers >= 1, got 0"),
        ("batch_size", [16, 2.5], "train.grid.batch_size values must be integers >= 1, got 2.5"),
        ("epochs", ["10"], "train.grid.epochs values must be integers >= 1, got '10'"),
        ("batch_size", [8, 8], "train.grid.batch_size repeats ['8']"),
    ],
)
def test_bad_grid_values(axis, values, match):
    refused(with_change(f"train.grid.{axis}", values), match)


def test_kspace_needs_two_layers():
    params = with_change("train.grid.layers", [1])
    refused(params, "model kspace needs layers >= 2")
    params["train"]["grid"]["model"] = ["image"]
    assert Params.model_validate(params).train.grid["layers"] == [1]


@pytest.mark.parametrize(
    "fractions,match",
    [
        ({"train": 0.7, "val": 0.2, "test": 0.2}, "must sum to 1"),
        ({"train": 0.5, "val": 0.2, "test": 0.2}, "sum 0.9"),
        ({"train": 1.2, "val": -0.1, "test": -0.1}, "must each be between 0 and 1"),
        ({"train": 0.7, "test": 0.3}, "needs exactly train, val, test"),
    ],
)
def test_split_fractions(fractions, match):
    refused(with_change("split.fractions", fractions), match)


def test_all_test_split_of_external_evaluation_is_valid():
    params = with_change("split.fractions", {"train": 0.0, "val": 0.0, "test": 1.0})
    assert Params.model_validate(params).split.fractions["test"] == 1.0


@pytest.mark.parametrize(
    "size,levels,match",
    [
        (96, 7, "slices.size 96 is not divisible by 2**(layers-1) = 64 for an image U-Net with layers=7"),
        (100, 4, "slices.size 100 is not divisible by 2**(layers-1) = 8"),
        (64, 6, "its bottom level would be 2 pixels wide (at least 4, i.e. size >= 128)"),
    ],
)
def test_image_size_too_small_or_not_divisible_for_unet_depth(size, levels, match):
    params = with_change("train.grid.layers", [levels])
    params["slices"]["size"] = size
    params["masks"]["intensities"] = {"medium": {"acceleration": 4.0, "center_fraction": 0.08}}
    refused(params, match)
    params["train"]["grid"]["model"] = ["kspace"]  # the rule is for the image U-Net only
    Params.model_validate(params)


def test_unet_size_rule_matches_the_model_builder():
    for size in (8, 12, 16, 48, 64, 128, 256):
        for levels in range(1, 9):
            ok = unet_size_problem(size, levels) is None
            factor = 2 ** (levels - 1)
            assert ok == (size % factor == 0 and size // factor >= MIN_UNET_BOTTOM)


def test_window_must_be_ordered():
    refused(with_change("slices.window_mm", [70.0, 20.0]), "0 <= lo < hi")


def test_typo_in_a_key_is_named():
    params = with_change("slices.per_subjet", 5)
    refused(params, "slices.per_subjet")


def test_load_params_names_the_file_and_each_problem(tmp_path):
    params = with_change("masks.intensities.low", {"acceleration": 0.5, "center_fraction": 0.16})
    params["train"]["grid"]["intensity"] = ["extreme"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError) as info:
        load_params(path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: 1 invalid parameter:"
    assert lines[1].startswith("  masks.intensities.low.acceleration: Input should be greater than or equal to 1")
    path.write_text("data: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ParamsError, match="expected a mapping of sections"):
        load_params(path)


def test_slice_count_larger_than_the_volume_names_the_subject():
    volume = np.zeros((16, 16, 4), np.float32)
    volume[4:12, 4:12, :] = 1.0
    with pytest.raises(SliceSelectionError) as info:
        choose_axial_slices(volume, 2.0, 5, subject="IXI012-HH-1211")
    assert str(info.value) == (
        "IXI012-HH-1211: cannot choose 5 slices (slices.per_subject) from a volume with 4 axial slices "
        "(shape (16, 16, 4)); lower slices.per_subject to at most 4 or drop this subject"
    )
    assert choose_axial_slices(volume, 2.0, 4, subject="IXI012-HH-1211") == [0, 1, 2, 3]
    with pytest.raises(SliceSelectionError, match="^IXI012-HH-1211: no head found"):
        choose_axial_slices(np.zeros((8, 8, 8), np.float32), 2.0, 3, subject="IXI012-HH-1211")


def test_nearly_empty_volume_names_the_subject_at_normalisation():
    from mrirecon.data.slices import normalise

    volume = np.zeros((10, 10, 10), np.float32)
    volume[0, 0, 0] = 5.0  # 1 voxel in 1000: the 99.5th percentile is 0
    with pytest.raises(SliceSelectionError, match=r"^IXI012-HH-1211: 99.5th percentile is 0.0; cannot normalise"):
        normalise(volume, 99.5, subject="IXI012-HH-1211")
    scaled, scale = normalise(volume, 100.0, subject="IXI012-HH-1211")
    assert scale == 5.0 and scaled.max() == 1.0


def test_every_profile_sets_every_model_setting_explicitly():
    # schema defaults keep old spec.json files meaning what they meant; the profiles choose, visibly
    for name in ("params.yaml", "params-quick.yaml", "params-quality.yaml"):
        train = yaml.safe_load((ROOT / name).read_text())["train"]
        assert set(ModelSettings.model_fields) <= set(train), (name, set(ModelSettings.model_fields) - set(train))
    default = load_params(ROOT / "params.yaml").train.settings()
    assert (default.image_data_consistency, default.refine_filters, default.base_filters) == (True, 8, 8)
    assert default.resample_masks is True  # measured to help at 8x (README: Fresh masks per epoch)


def test_model_settings_defaults():
    settings = Params.model_validate(BASE).train.settings()
    assert type(settings) is ModelSettings and settings == ModelSettings()
    assert settings.model_dump() == {
        "learning_rate": 0.001,
        "base_filters": 16,
        "kspace_filters": 32,
        "data_consistency": True,
        "early_stopping_patience": None,
        "seed": 0,
        "image_data_consistency": False,
        "cascades": 1,
        "refine_filters": 0,
        "resample_masks": False,
    }
    quick = load_params(ROOT / "params-quick.yaml").train.settings()
    assert (quick.learning_rate, quick.base_filters, quick.kspace_filters) == (0.002, 8, 16)


@pytest.mark.parametrize("key,value", [("learning_rate", 0.0), ("cascades", 6), ("early_stopping_patience", 0)])
def test_model_settings_rules_are_checked_in_the_train_section(key, value):
    refused(with_change(f"train.{key}", value), f"train.{key}")
    with pytest.raises(ValidationError):
        ModelSettings(**{key: value})


@pytest.mark.parametrize(
    "path,value,loc,message",
    [
        (
            "train.grid.layers",
            [1],
            "train.grid",
            "train.grid.layers [1]: model kspace needs layers >= 2 (number of 3x3 conv layers; a plain list is "
            "combined with every model, a mapping {image: [...], kspace: [...]} sets them per model)",
        ),
        (
            "train.grid.intensity",
            ["extreme"],
            "(top level)",
            "train.grid.intensity ['extreme'] not in masks.intensities ['low', 'medium']",
        ),
        (
            "train.grid.model",
            ["image", "transformer"],
            "train.grid",
            "train.grid.model has unknown kinds ['transformer']; expected ['image', 'kspace']",
        ),
    ],
)
def test_a_bad_grid_is_refused_once_with_its_message(tmp_path, path, value, loc, message):
    with pytest.raises(ValidationError) as info:
        Params.model_validate(with_change(path, value))
    assert info.value.error_count() == 1
    path_file = tmp_path / "params.yaml"
    path_file.write_text(yaml.safe_dump(with_change(path, value)))
    with pytest.raises(ParamsError) as error:
        load_params(path_file)
    assert str(error.value) == f"{path_file}: 1 invalid parameter:\n  {loc}: {message}"


def test_intensities_are_named_by_their_key():
    masks = Params.model_validate(BASE).masks
    assert masks.intensity_list() == [
        Intensity(name="low", acceleration=2.0, center_fraction=0.16),
        Intensity(name="medium", acceleration=4.0, center_fraction=0.08),
    ]
    refused(with_change("masks.intensities.low.name", "high"), "the intensity is named by its key")
    with pytest.raises(ValidationError, match="larger than 1/acceleration = 0.25"):
        Intensity(name="medium", acceleration=4.0, center_fraction=0.3)


def test_each_profile_file_names_itself_and_only_smoke_runs_register_nothing():
    profiles = {
        name: load_params(ROOT / name).profile for name in ("params.yaml", "params-quick.yaml", "params-quality.yaml")
    }
    assert {name: (p.name, p.register_models) for name, p in profiles.items()} == {
        "params.yaml": ("default", True),
        "params-quick.yaml": ("quick", False),
        "params-quality.yaml": ("quality", True),
    }
    assert Params.model_validate(BASE).profile.model_dump() == {"name": "default", "register_models": True}


def test_profile_name_must_match_its_file_and_be_a_plain_word(tmp_path):
    path = tmp_path / "params-smoke.yaml"
    path.write_text(yaml.safe_dump({**BASE, "profile": {"name": "quick"}}))
    with pytest.raises(ParamsError, match=r"params-smoke.yaml: profile.name is 'quick', expected 'smoke'"):
        load_params(path)
    path.write_text(yaml.safe_dump({**BASE, "profile": {"name": "smoke"}}))
    assert load_params(path).profile.name == "smoke"
    active = tmp_path / "params.yaml"  # the active copy of any profile
    active.write_text(yaml.safe_dump({**BASE, "profile": {"name": "smoke"}}))
    assert load_params(active).profile.name == "smoke"
    refused(with_change("profile", {"name": "my profile"}), "profile.name")
