from dataclasses import fields

import pytest

from mrirecon.grid import (
    GRID_AXES,
    OPTIONAL_AXES,
    REQUIRED_AXES,
    GridPoint,
    TrainingGroup,
    expand_grid,
    training_groups,
    validate_grid,
)

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


def test_points_differing_only_in_epochs_share_one_training():
    grid = {"model": ["image"], "layers": [2, 3], "batch_size": [16], "epochs": [20, 5, 10], "intensity": ["medium"]}
    groups = training_groups(expand_grid(grid, ["medium"]))
    assert [g.name for g in groups] == ["image-L2-B16-medium", "image-L3-B16-medium"]
    for group, layers in zip(groups, (2, 3)):
        assert group.points == tuple(GridPoint("image", layers, 16, e, "medium") for e in (5, 10, 20))
        assert group.epochs == (5, 10, 20) and group.final == GridPoint("image", layers, 16, 20, "medium")
        assert {p.training_name for p in group.points} == {group.name}
    assert GridPoint("kspace", 2, 8, 4, "high", True).training_name == "kspace-L2-B8-high-phase"
    # every point in exactly one training; trainings in the order of their first point in the grid
    points = expand_grid(GRID, ["low", "high"])
    groups = training_groups(points)
    trained = [p for g in groups for p in g.points]
    assert len(trained) == len(points) and set(trained) == set(points) and len(groups) == len(points) // 2
    assert [g.points[0] for g in groups] == [p for p in points if p.epochs == 4]


def test_without_sharing_every_point_trains_alone():
    grid = {"model": ["image"], "layers": [2, 3], "batch_size": [16], "epochs": [5, 10, 20], "intensity": ["medium"]}
    points = expand_grid(grid, ["medium"])
    groups = training_groups(points, share_epochs=False)
    assert [g.points for g in groups] == [(p,) for p in points]
    assert [g.name for g in groups] == [p.name for p in points]  # "image-L2-B16-E5-medium", ...


def test_a_training_group_checks_its_points_and_restricts_to_unfinished_ones():
    a, b, c = (GridPoint("image", 2, 8, e, "low") for e in (2, 4, 8))
    group = TrainingGroup("image-L2-B8-low", (a, b, c))
    assert group.subset([c, a]) == TrainingGroup("image-L2-B8-low", (a, c))
    assert group.subset([b]).final == b
    with pytest.raises(ValueError, match="has no points"):
        group.subset([GridPoint("image", 3, 8, 2, "low")])
    with pytest.raises(ValueError, match="distinct and ascending"):
        TrainingGroup("x", (b, a))
    with pytest.raises(ValueError, match="differ in more than epochs"):
        TrainingGroup("x", (a, GridPoint("image", 2, 8, 4, "high")))
    with pytest.raises(ValueError, match="no grid points"):
        group.subset([])
    with pytest.raises(ValueError, match="repeated"):
        training_groups([a, a])


def test_axes_may_be_given_per_model_kind():
    grid = {
        "model": ["image", "kspace"],
        "layers": {"image": [2, 3, 4], "kspace": [2, 3]},
        "batch_size": {"image": [8, 32], "kspace": [16]},
        "epochs": [5, 10],
        "intensity": ["medium"],
    }
    points = expand_grid(grid, ["medium"])
    image = [p for p in points if p.model == "image"]
    kspace = [p for p in points if p.model == "kspace"]
    assert len(image) == 3 * 2 * 2 and len(kspace) == 2 * 1 * 2
    assert {(p.layers, p.batch_size) for p in kspace} == {(2, 16), (3, 16)}
    assert len(training_groups(points)) == 6 + 2  # epochs shared
    with pytest.raises(ValueError, match="per model kind needs exactly the kinds"):
        validate_grid({**grid, "layers": {"image": [2]}})
    with pytest.raises(ValueError, match="kspace needs layers >= 2"):
        validate_grid({**grid, "layers": {"image": [1, 2], "kspace": [1]}})
