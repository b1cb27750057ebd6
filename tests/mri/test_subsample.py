import numpy as np
import pytest

from mrirecon.mri.subsample import achieved_acceleration, cartesian_mask, center_line_count
from mrirecon.seeding import rng_for


def test_centre_line_count_is_exact_and_contiguous():
    mask = cartesian_mask(128, 4.0, 0.08, rng_for(0, "a"), "random")
    assert center_line_count(128, 0.08) == 10
    # centre block starts at (W - n + 1) // 2 = 59 and covers the DC line 64
    assert mask[59:69].all()
    assert center_line_count(128, 0.16) == 20 and center_line_count(128, 0.04) == 5


@pytest.mark.parametrize("mask_type", ["random", "equispaced"])
@pytest.mark.parametrize("accel,cf", [(2.0, 0.16), (4.0, 0.08), (8.0, 0.04)])
def test_centre_always_sampled_and_mean_acceleration_near_nominal(mask_type, accel, cf):
    width = 128
    n_low = center_line_count(width, cf)
    start = (width - n_low + 1) // 2
    kept = []
    for i in range(2000):
        mask = cartesian_mask(width, accel, cf, rng_for(7, "s", i), mask_type)
        assert mask[start : start + n_low].all()
        assert mask[width // 2]
        kept.append(mask.sum())
    # acceleration over many masks = total lines / total kept lines
    assert width / np.mean(kept) == pytest.approx(accel, rel=0.05)


def test_equispaced_known_line_count():
    # W=100, R=4, cf=0.08 -> 8 centre lines (46..53); spacing (100-8)/(25-8) = 5.41
    mask = cartesian_mask(100, 4.0, 0.08, rng_for(0, "x"), "equispaced")
    assert mask[46:54].all() and mask.sum() >= 8
    left = np.flatnonzero(mask[:46])
    assert set(np.diff(left)) <= {5, 6}
    assert 23 <= mask.sum() <= 27
    assert achieved_acceleration(mask) == pytest.approx(100 / mask.sum())


def test_deterministic_per_key_and_global_rng_untouched():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = cartesian_mask(128, 4, 0.08, rng_for(1, "IXI012-HH-1211", 60, "medium"))
    b = cartesian_mask(128, 4, 0.08, rng_for(1, "IXI012-HH-1211", 60, "medium"))
    c = cartesian_mask(128, 4, 0.08, rng_for(1, "IXI012-HH-1211", 61, "medium"))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown mask type"):
        cartesian_mask(64, 4, 0.08, rng_for(0), "radial")
    with pytest.raises(ValueError, match="more than W/R"):
        cartesian_mask(64, 8, 0.5, rng_for(0))
    assert achieved_acceleration(np.zeros(8, bool)) == float("inf")


@pytest.mark.parametrize(
    "width,accel,cf,match",
    [
        (0, 4.0, 0.08, "width must be a positive integer"),
        (64.5, 4.0, 0.08, "width must be a positive integer"),
        (64, 0.5, 0.08, "acceleration must be finite and >= 1"),
        (64, float("nan"), 0.08, "acceleration must be finite and >= 1"),
        (64, float("inf"), 0.08, "acceleration must be finite and >= 1"),
        (64, 4.0, 0.0, r"center_fraction must be in \(0, 1\]"),
        (64, 4.0, -0.1, r"center_fraction must be in \(0, 1\]"),
        # cf = 0.246 <= 1/R = 0.2469 but round(100 * 0.246) = 25 lines > W/R = 24.7
        (100, 4.05, 0.246, "keeps 25 lines, more than W/R = 24.7"),
    ],
)
def test_arguments_outside_the_domain_raise(width, accel, cf, match):
    with pytest.raises(ValueError, match=match):
        cartesian_mask(width, accel, cf, rng_for(0))
