"""Reconstructing one's own scan with a model's recipe (mrirecon.stages.reconstruct): full-size IXI geometry,
the fully sampled identity, masks, the field of view, and clear errors. Tiny untrained models: a fresh image
model returns its zero-filled input, and one with image data consistency puts the measured lines back."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from helpers import ixi_like_nifti
from skimage.transform import rescale, resize

from mrirecon.config import ModelSettings
from mrirecon.data.scan import read_scan
from mrirecon.grid import GridPoint
from mrirecon.models.checkpoint import ModelSpec
from mrirecon.models.recipe import Recipe
from mrirecon.models.training import build_model
from mrirecon.mri.subsample import cartesian_mask
from mrirecon.seeding import rng_for
from mrirecon.stages.reconstruct import (
    VOLUMES,
    RecipeMissing,
    reconstruct_scan,
    simulation_for,
    slice_masks,
    write_outputs,
)

DC = ModelSettings(base_filters=4, image_data_consistency=True)
PLAIN = ModelSettings(base_filters=4)
POINT = GridPoint("image", 2, 8, 1, "medium")


def _spec(size: int, settings: ModelSettings = DC, pixel_mm=(2.0, 2.0), **recipe) -> ModelSpec:
    fields = dict(
        intensity="medium", acceleration=4.0, center_fraction=0.08, mask_type="random", mask_seed=1234,
        synthetic_phase=False, phase_seed=0, percentile=99.5, size=size, pixel_mm=pixel_mm, window_mm=(20.0, 70.0),
    )  # fmt: skip
    return ModelSpec(POINT, settings, size, "", Recipe(**{**fields, **recipe}))


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    """A real-IXI-like 256x256x150 PSR int16 volume (0.9375 x 0.9375 x 1.2 mm, scale slope 0.5), fully
    sampled through an image-DC model of size 128 at 2 mm, every one of its 256 axial slices written out."""
    folder = tmp_path_factory.mktemp("full")
    written = ixi_like_nifti(folder / "IXI900-HH-9000-T1.nii.gz")
    scan = read_scan(folder / "IXI900-HH-9000-T1.nii.gz")
    spec = _spec(128)
    simulation = simulation_for(spec, acceleration=1)
    result = reconstruct_scan(build_model(POINT, 128, DC), spec, scan, simulation, batch_size=32)
    summary = write_outputs(result, scan, folder / "out", {"simulation": {"acceleration": 1}})
    return written, scan, result, summary, folder / "out"


def test_full_size_outputs_lie_on_the_input_grid(full_size):
    written, scan, result, summary, out = full_size
    assert written.shape == (256, 256, 150) and scan.axcodes == "PSR"
    assert len(result.slice_index) == 256 and result.reference.shape == (256, 128, 128)
    assert result.grid.resampled_shape == (120, 90)  # 256 x 0.9375 mm and 150 x 1.2 mm at 2 mm
    for name in VOLUMES:
        image = nib.load(out / f"{name}.nii.gz")
        assert image.shape == written.shape and np.array_equal(image.affine, written.affine), name
        assert nib.aff2axcodes(image.affine) == ("P", "S", "R")
        assert (int(image.header["qform_code"]), int(image.header["sform_code"])) == (1, 1)
    assert nib.load(out / "field_of_view.nii.gz").get_fdata().min() == 1  # 120 x 90 fits in 128 x 128
    assert summary["field_of_view"]["head_voxels_outside"] == 0
    assert (out / "panel.png").stat().st_size > 10_000
    assert json.loads((out / "summary.json").read_text())["slices_reconstructed"] == 256


def test_fully_sampled_dc_model_returns_the_reference_and_the_reference_is_the_input(full_size):
    written, scan, result, summary, out = full_size
    assert result.masks.all() and summary["masks"]["achieved_acceleration"] == 1.0
    data = {name: nib.load(out / f"{name}.nii.gz").get_fdata(dtype=np.float32) for name in VOLUMES}
    original = written.get_fdata(dtype=np.float32)  # scanner units, on-disk (P, S, R) order
    peak = float(original.max())
    # data consistency with every line measured: the network's output is its input, up to float32 FFT rounding
    assert np.abs(data["reconstruction"] - data["reference"]).max() < 1e-4 * peak
    assert np.abs(data["zero_filled"] - data["reference"]).max() < 1e-4 * peak
    assert data["error"].max() < 1e-4 * peak
    m = summary["metrics"]["reconstruction"]
    assert m["nmse"] < 1e-10 and (m["psnr"] is None or m["psnr"] > 90) and m["ssim"] > 0.9999
    # reference = input through the in-plane 0.94/1.2 mm -> 2 mm -> back round trip (computed here with skimage)
    # on disk the axes run A->P, I->S, L->R, so RAS axial slice k is original[:, k, :] exactly as an axial image
    # (rows anterior->posterior, columns left->right, 0.9375 x 1.2 mm)
    k = 128
    image = original[:, k, :]
    expected = resize(
        rescale(image, (0.9375 / 2, 1.2 / 2), order=1, anti_aliasing=True, preserve_range=True).astype(np.float32),
        image.shape, order=1, anti_aliasing=False, preserve_range=True,
    )  # fmt: skip
    assert np.abs(data["reference"][:, k, :] - expected).max() < 1e-3 * peak
    head = original > 0.1 * peak
    relative = np.abs(data["reference"] - original)[head].mean() / original[head].mean()
    assert relative < 0.02  # the round trip blurs edges only: mean |difference| under 2% inside the head


def test_reference_is_exactly_the_input_when_pixels_match_and_fit(tmp_path):
    written = ixi_like_nifti(
        tmp_path / "s.nii.gz", shape=(40, 36, 30), voxel_mm=(2.0, 2.0, 2.0), dtype=np.uint8, slope=4.0
    )
    scan = read_scan(tmp_path / "s.nii.gz")
    spec = _spec(48)
    result = reconstruct_scan(build_model(POINT, 48, DC), spec, scan, simulation_for(spec, acceleration=1))
    write_outputs(result, scan, tmp_path / "out", {})
    original = written.get_fdata(dtype=np.float32)
    reference = nib.load(tmp_path / "out/reference.nii.gz").get_fdata(dtype=np.float32)
    recon = nib.load(tmp_path / "out/reconstruction.nii.gz").get_fdata(dtype=np.float32)
    assert np.array_equal(reference, original)
    assert np.abs(recon - original).max() < 1e-4 * original.max()


def test_undersampled_masks_follow_the_recipe_and_an_untrained_model_returns_zero_filled(tmp_path):
    ixi_like_nifti(tmp_path / "IXI901-Guys-0001-T1.nii.gz", shape=(40, 36, 30), voxel_mm=(2.0, 2.0, 2.0))
    scan = read_scan(tmp_path / "IXI901-Guys-0001-T1.nii.gz")
    spec = _spec(48, PLAIN)
    simulation = simulation_for(spec, seed=7)
    assert simulation.warnings == () and (simulation.acceleration, simulation.mask_seed) == (4.0, 7)
    result = reconstruct_scan(build_model(POINT, 48, PLAIN), spec, scan, simulation, slices=range(10, 20))
    assert list(result.slice_index) == list(range(10, 20))
    # the masks stage's draw for this subject, slice and intensity (rng_for(seed, subject, slice, intensity))
    expected = cartesian_mask(48, 4.0, 0.08, rng_for(7, "IXI901-Guys-0001", 12, "medium"), "random")
    assert np.array_equal(result.masks[2], expected)
    assert 8 <= result.masks.sum(axis=1).mean() <= 16  # 48 / 4 = 12 lines expected per slice
    assert np.allclose(result.reconstruction, result.zero_filled, atol=1e-6)  # zero-initialised last conv
    assert np.abs(result.zero_filled - result.reference).max() > 0.05  # undersampling changed the image
    summary = write_outputs(result, scan, tmp_path / "out", {})
    zf, recon = summary["metrics"]["zero_filled"], summary["metrics"]["reconstruction"]
    assert 10 < zf["psnr"] < 60 and zf["psnr"] == pytest.approx(recon["psnr"], abs=1e-3)
    fov = nib.load(tmp_path / "out/field_of_view.nii.gz").get_fdata()  # on disk (P, S, R): S is RAS z
    assert fov[:, 10:20, :].min() == 1 and fov[:, :10, :].max() == 0 and fov[:, 20:, :].max() == 0


def test_a_slice_wider_than_the_model_is_cropped_and_reported(tmp_path):
    written = ixi_like_nifti(tmp_path / "wide.nii.gz", shape=(80, 30, 28), voxel_mm=(2.0, 2.0, 2.0))
    scan = read_scan(tmp_path / "wide.nii.gz")  # axial slices 80 rows (A-P) x 28 columns; model 48 x 48
    spec = _spec(48)
    result = reconstruct_scan(build_model(POINT, 48, DC), spec, scan, simulation_for(spec))
    summary = write_outputs(result, scan, tmp_path / "out", {})
    fov = nib.load(tmp_path / "out/field_of_view.nii.gz").get_fdata()
    recon = nib.load(tmp_path / "out/reconstruction.nii.gz").get_fdata()
    reference = nib.load(tmp_path / "out/reference.nii.gz").get_fdata()
    # on disk axis 0 is A-P (80 rows): 16 cropped at each end, where the head (rows 8..72) is not reconstructed
    assert fov[16:64].min() == 1 and fov[:16].max() == 0 and fov[64:].max() == 0
    assert recon[:16].max() == 0 and recon[16:64].max() > 0
    assert np.array_equal(reference[:16], written.get_fdata()[:16]) and reference[:16].max() > 0
    assert summary["field_of_view"]["head_voxels_outside"] > 0


def test_missing_recipe_and_impossible_overrides_are_clear_errors():
    with pytest.raises(RecipeMissing, match="retrain the grid point.*--params"):
        simulation_for(ModelSpec(POINT, DC, 48))
    with pytest.raises(ValueError, match="center_fraction 0.08 is larger than 1/acceleration"):
        simulation_for(_spec(48), acceleration=16)
    warned = simulation_for(_spec(48), acceleration=8, center_fraction=0.04)
    assert len(warned.warnings) == 2 and "outside the model's training distribution" in warned.warnings[0]
    assert slice_masks(simulation_for(_spec(48), acceleration=1), 48, "x", [0, 1]).all()
