import gzip

import nibabel as nib
import numpy as np
import pytest

from mrirecon.volumes import VolumeError, load_volume, parse_ixi_name, to_nifti_bytes

NAME = "IXI001-HH-0001-T1.nii.gz"


def _psr_uint8_bytes(data: np.ndarray, slope: float) -> bytes:
    """Encode data stored P-S-R on disk (like the 2 mm sample) as uint8 with a scale slope."""
    affine = np.array([[0, 0, 2.0, 0], [-2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data.astype(np.uint8), affine)
    img.header.set_slope_inter(slope, 0.0)
    return gzip.compress(img.to_bytes())


def test_names_of_both_ixi_variants():
    assert parse_ixi_name("IXI012-HH-1211_T1.nii.gz") == ("IXI012-HH-1211", "HH")
    assert parse_ixi_name("IXI-T1/IXI002-Guys-0828-T1.nii.gz") == ("IXI002-Guys-0828", "Guys")
    with pytest.raises(VolumeError, match="not an IXI T1"):
        parse_ixi_name("IXI002-Guys-0828-T2.nii.gz")


def test_reorientation_to_ras_and_scaling():
    data = np.zeros((4, 5, 6))  # axes: P, S, R
    data[0, 4, 5] = 7  # index 0 along P = most anterior; most superior; most right
    vol = load_volume(NAME, _psr_uint8_bytes(data, 2.5))
    assert vol.original_axcodes == "PSR"
    assert vol.data.shape == (6, 4, 5)  # R, A, S
    assert vol.data.dtype == np.float32
    # in RAS: right = last x, anterior = last y, superior = last z; value scaled 7 * 2.5
    assert vol.data[5, 3, 4] == pytest.approx(17.5)
    assert np.count_nonzero(vol.data) == 1
    assert vol.voxel_mm == (2.0, 2.0, 2.0)


def test_single_volume_4d_is_accepted():
    vol = load_volume(NAME, to_nifti_bytes(np.ones((4, 5, 6, 1), np.float32)))
    assert vol.data.shape == (4, 5, 6)


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"", "empty file"),
        (to_nifti_bytes(np.random.default_rng(0).random((16, 16, 16), np.float32))[:4000], "truncated gzip"),
        (gzip.compress(b"hello, I am not an image" * 20), "not a NIfTI"),
        (to_nifti_bytes(np.ones((8, 8), np.float32)), "expected a 3D volume"),
        (to_nifti_bytes(np.ones((4, 4, 4, 3), np.float32)), "expected a 3D volume"),
        (to_nifti_bytes(np.full((4, 4, 4), np.nan, np.float32)), "NaN/Inf"),
        (to_nifti_bytes(np.zeros((4, 4, 4), np.float32)), "all voxels are zero"),
    ],
)
def test_bad_files_raise_naming_file_and_reason(raw, reason):
    with pytest.raises(VolumeError, match=reason) as info:
        load_volume(NAME, raw)
    assert NAME in str(info.value)
