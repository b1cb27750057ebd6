import pytest

from mrirecon.grid import GridPoint, expand_grid

GRID = {"model": ["image", "kspace"], "layers": [2, 3], "batch_size": [8], "epochs": [4, 8], "intensity": ["low", "high"]}


def test_cartesian_product_size_order_and_names():
    points = expand_grid(GRID, ["low", "medium", "high"])
    assert len(points) == 2 * 2 * 1 * 2 * 2
    assert len({p.name for p in points}) == len(points)
    assert [p.intensity for p in points[:8]] == ["low"] * 8  # intensity outermost
    assert points[0] == GridPoint("image", 2, 8, 4, "low")
    assert points[0].name == "image-L2-B8-E4-low"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"model": ["transformer"]}, "unknown kinds"),
        ({"intensity": ["extreme"]}, "not among the masks"),
        ({"epochs": []}, "empty"),
    ],
)
def test_bad_grids_raise(change, message):
    with pytest.raises(ValueError, match=message):
        expand_grid({**GRID, **change}, ["low", "medium", "high"])
    with pytest.raises(ValueError, match="exactly the axes"):
        expand_grid({k: v for k, v in GRID.items() if k != "layers"}, ["low"])
