"""Reading one's own scan and mapping its slices to a model's grid and back (mrirecon.data.scan)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from helpers import ixi_like_nifti, to_nifti_bytes

from mrirecon.data.scan import InplaneGrid, read_scan, write_like
from mrirecon.data.volumes import VolumeError


def test_ixi_like_scan_is_read_in_ras_and_written_back_on_its_own_grid(tmp_path):
    written = ixi_like_nifti(tmp_path / "scan.nii.gz", shape=(20, 24, 12), voxel_mm=(0.9375, 0.9375, 1.2))
    scan = read_scan(tmp_path / "scan.nii.gz")
    assert scan.axcodes == "PSR" and scan.name == "scan"
    assert scan.ras.shape == (12, 20, 24) and scan.voxel_mm == pytest.approx((1.2, 0.9375, 0.9375))
    on_disk = written.get_fdata(dtype=np.float32)  # int16 * slope 0.5
    assert np.array_equal(scan.ras, nib.as_closest_canonical(written).get_fdata(dtype=np.float32))
    assert np.array_equal(scan.to_disk(scan.ras), on_disk)
    write_like(scan, scan.ras * 2, tmp_path / "twice.nii.gz")
    back = nib.load(tmp_path / "twice.nii.gz")
    assert back.shape == written.shape and np.array_equal(back.affine, written.affine)
    assert nib.aff2axcodes(back.affine) == ("P", "S", "R")
    assert (int(back.header["qform_code"]), int(back.header["sform_code"])) == (1, 1)
    assert back.get_data_dtype() == np.float32
    assert np.array_equal(back.get_fdata(dtype=np.float32), on_disk * 2)


def test_unreadable_and_non_3d_inputs_raise_naming_the_file(tmp_path):
    with pytest.raises(VolumeError, match="missing.nii.gz: no such file"):
        read_scan(tmp_path / "missing.nii.gz")
    (tmp_path / "notes.nii").write_text("not an image")
    with pytest.raises(VolumeError, match="notes.nii: not a NIfTI image"):
        read_scan(tmp_path / "notes.nii")
    (tmp_path / "series.nii.gz").write_bytes(to_nifti_bytes(np.ones((4, 5, 6, 2), np.float32)))
    with pytest.raises(VolumeError, match=r"series.nii.gz: expected a 3D volume.*\(4, 5, 6, 2\)") as err:
        read_scan(tmp_path / "series.nii.gz")
    assert err.value.kind == "not-3d"
    (tmp_path / "zero.nii.gz").write_bytes(to_nifti_bytes(np.zeros((4, 5, 6), np.float32)))
    with pytest.raises(VolumeError, match="zero.nii.gz: all voxels are zero"):
        read_scan(tmp_path / "zero.nii.gz")


def test_same_pixel_size_and_a_fitting_slice_round_trip_exactly():
    grid = InplaneGrid((30, 22), (2.0, 2.0), (2.0, 2.0), 32)
    image = np.random.default_rng(0).random((30, 22)).astype(np.float32)
    model = grid.to_model(image)
    assert model.shape == (32, 32) and model[1:31, 5:27].sum() == pytest.approx(image.sum())  # centred: offsets 1, 5
    assert np.array_equal(grid.from_model(model), image)
    assert grid.field_of_view().all()


def test_cropped_border_is_outside_the_field_of_view():
    grid = InplaneGrid((40, 20), (2.0, 2.0), (2.0, 2.0), 32)  # 40 rows > 32: 4 rows cropped at each end
    image = np.arange(800, dtype=np.float32).reshape(40, 20)
    fov = grid.field_of_view()
    assert fov[4:36].all() and not fov[:4].any() and not fov[36:].any()
    assert np.array_equal(grid.from_model(grid.to_model(image)), np.where(fov, image, 0))


def test_resampling_maps_full_resolution_ixi_slices_to_2mm_and_back():
    grid = InplaneGrid((256, 150), (0.9375, 1.2), (2.0, 2.0), 128)
    assert grid.resamples and grid.resampled_shape == (120, 90)  # round(256 * 0.46875), round(150 * 0.6)
    rows, cols = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(-1, 1, 150), indexing="ij")
    smooth = (1 + np.cos(2 * rows) * np.sin(3 * cols)).astype(np.float32)  # varies slowly: survives 2 mm
    back = grid.from_model(grid.to_model(smooth))
    assert back.shape == (256, 150) and grid.field_of_view().all()
    inner = (slice(8, -8), slice(8, -8))  # away from the edge, where interpolation has fewer neighbours
    assert np.abs(back - smooth)[inner].max() < 0.01  # values in [0, 2]
