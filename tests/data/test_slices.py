import numpy as np
import pytest

from mrirecon.data.slices import axial_image, choose_axial_slices, normalise, pad_or_crop
from mrirecon.data.split import split_subjects


def synthetic_head(n_z: int = 100) -> np.ndarray:
    """RAS volume (2 mm): a neck cylinder (z 0-39, radius 14) under an ellipsoid head whose
    widest cross-section (semi-axes 30 x 36 voxels) is at z = 70; vertex at z = 94."""
    x, y, z = np.meshgrid(np.arange(80) - 40, np.arange(96) - 48, np.arange(n_z), indexing="ij")
    head = (x / 30.0) ** 2 + (y / 36.0) ** 2 + ((z - 70) / 25.0) ** 2 <= 1
    neck = (x**2 + y**2 <= 14**2) & (z < 40)
    shoulders = (np.abs(x) < 39) & (np.abs(y) < 20) & (z < 8)  # wider than the head, low down
    return (head | neck | shoulders).astype(np.float32) * 100


def test_chooses_block_at_widest_head_not_neck_or_shoulders():
    vol = synthetic_head()
    chosen = choose_axial_slices(vol, 2.0, 5)
    assert chosen == [68, 69, 70, 71, 72]
    assert choose_axial_slices(vol, 2.0, 1) == [70]


def test_slice_count_validation():
    with pytest.raises(ValueError, match="cannot choose 200"):
        choose_axial_slices(synthetic_head(), 2.0, 200)


def test_axial_image_orientation():
    vol = np.zeros((3, 4, 2))
    vol[2, 3, 1] = 1  # right-most, anterior-most voxel of slice 1
    image = axial_image(vol, 1)
    assert image.shape == (4, 3)
    assert image[0, 2] == 1  # top row = anterior, last column = right


def test_normalise_and_pad_or_crop():
    vol = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    scaled, scale = normalise(vol, 99.5)
    assert scale == pytest.approx(np.percentile(vol, 99.5))
    assert np.percentile(scaled, 99.5) == pytest.approx(1.0)
    img = np.ones((90, 120), np.float32)
    out = pad_or_crop(img, 128)
    assert out.shape == (128, 128)
    assert out.sum() == 90 * 120  # both sides are below 128: zero padding only
    assert out[:19].sum() == 0 and out[19:109, 4:124].all()
    cropped = pad_or_crop(np.arange(16.0).reshape(4, 4), 2)
    np.testing.assert_array_equal(cropped, [[5, 6], [9, 10]])


def test_split_is_by_subject_disjoint_complete_and_deterministic():
    subjects = [f"IXI{i:03d}-HH-{i:04d}" for i in range(150)]
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    split = split_subjects(subjects * 5, fractions, seed=42)  # 5 slices per subject
    assert set(split) == set(subjects)
    groups = {name: {s for s, g in split.items() if g == name} for name in fractions}
    assert [len(groups[n]) for n in ("train", "val", "test")] == [105, 22, 23]
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
    assert split == split_subjects(list(reversed(subjects)), fractions, seed=42)
    assert split != split_subjects(subjects, fractions, seed=43)
    with pytest.raises(ValueError, match="sum to 1"):
        split_subjects(subjects, {"train": 0.5, "val": 0.1, "test": 0.1}, 0)


def test_resample_inplane_halves_a_1mm_slice_to_2mm():
    from mrirecon.data.slices import resample_inplane

    image = np.zeros((100, 80), np.float32)
    image[20:80, 20:60] = 1.0
    out = resample_inplane(image, 1.0, 1.0, 2.0)
    assert out.shape == (50, 40)
    assert out[25, 20] == pytest.approx(1.0, abs=0.05) and out[2, 2] == pytest.approx(0.0, abs=1e-6)
    assert resample_inplane(image, 2.0, 2.0, 2.0) is image
