from dataclasses import fields

import pytest

from mrirecon.grid import GRID_AXES, OPTIONAL_AXES, REQUIRED_AXES, GridPoint, expand_grid, validate_grid

GRID = {
    "model": ["image", "kspace"],
    "layers": [2, 3],
    "batch_size": [8],
    "epochs": [4, 8],
    "intensity": ["low", "high"],
}


def test_cartesian_product_size_order_and_names():
    points = expand_grid(GRID, ["low", "medium", "high"])
    assert len(points) == 2 * 2 * 1 * 2 * 2
    assert len({p.name for p in points}) == len(points)
    assert [p.intensity for p in points[:8]] == ["low"] * 8  # intensity outermost
    assert points[0] == GridPoint("image", 2, 8, 4, "low")
    assert points[0].name == "image-L2-B8-E4-low"


def test_axes_are_defined_once_by_the_grid_point():
    assert GRID_AXES == ("model", "layers", "batch_size", "epochs", "intensity", "synthetic_phase")
    assert GRID_AXES == tuple(f.name for f in fields(GridPoint)) == tuple(GridPoint("image", 1, 1, 1, "x").as_params())
    assert REQUIRED_AXES == ("model", "layers", "batch_size", "epochs", "intensity")
    assert set(GRID_AXES) == set(REQUIRED_AXES) | set(OPTIONAL_AXES)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"model": ["transformer"]}, "train.grid.model has unknown kinds ['transformer']; expected ['image', 'kspace"),
        ({"intensity": ["extreme"]}, "train.grid.intensity ['extreme'] not in masks.intensities ['low', 'medium', 'hi"),
        ({"epochs": []}, "train.grid.epochs is empty; give at least one value"),
        ({"layers": [1]}, "train.grid.layers [1]: model kspace needs layers >= 2"),
        ({"synthetic_phase": [True, True]}, "train.grid.synthetic_phase must be a list of distinct true/false values"),
    ],
)
def test_bad_grids_raise(change, message):
    with pytest.raises(ValueError) as info:
        expand_grid({**GRID, **change}, ["low", "medium", "high"])
    assert str(info.value).startswith(message)
    with pytest.raises(ValueError, match="exactly the axes"):
        expand_grid({k: v for k, v in GRID.items() if k != "layers"}, ["low"])


def test_validate_grid_returns_required_then_optional_axes():
    grid = {"synthetic_phase": [False, True], **GRID}
    assert list(validate_grid(grid)) == [*REQUIRED_AXES, "synthetic_phase"]
    assert validate_grid(GRID) == GRID
    with pytest.raises(ValueError, match=r"missing \['layers'\], unknown \['depth'\]"):
        validate_grid({**{k: v for k, v in GRID.items() if k != "layers"}, "depth": [2]})
