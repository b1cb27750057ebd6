import gzip
import io
import time
import tracemalloc

import nibabel as nib
import numpy as np
import pytest
from helpers import to_nifti_bytes

from mrirecon.data.volumes import VolumeError, ixi_modality, load_volume, not_t1_error, parse_ixi_name

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


# --- bad inputs: each kind gets a category (kind) and a one-line message naming the file ---


def _header_only(shape, dtype=np.float32, payload: bytes = b"\0" * 64) -> bytes:
    """A NIfTI-1 file whose header claims ``shape`` but that holds only ``payload`` bytes of data."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_data_offset(352)
    return header.binaryblock + b"\0" * 4 + payload


@pytest.mark.parametrize(
    "raw,kind",
    [
        (b"", "empty"),
        (to_nifti_bytes(np.random.default_rng(0).random((16, 16, 16), np.float32))[:4000], "bad-gzip"),
        (b"\x1f\x8b" + b"garbage" * 10, "bad-gzip"),
        (gzip.compress(b"hello, I am not an image" * 20), "not-nifti"),
        (b"plain text, not gzip and not NIfTI" * 20, "not-nifti"),
        (to_nifti_bytes(np.ones((8, 8), np.float32)), "not-3d"),
        (to_nifti_bytes(np.ones((8, 8, 1), np.float32)), "not-3d"),
        (to_nifti_bytes(np.ones((4, 4, 4, 3), np.float32)), "not-3d"),
        (to_nifti_bytes(np.full((4, 4, 4), np.inf, np.float32)), "non-finite"),
        (to_nifti_bytes(np.zeros((4, 4, 4), np.float32)), "all-zero"),
        (gzip.compress(_header_only((30000, 30000, 30000))), "too-large"),
        (gzip.compress(_header_only((8, 8, 8), payload=b"\1" * 100)), "unreadable-data"),
    ],
)
def test_bad_files_have_a_kind(raw, kind):
    with pytest.raises(VolumeError) as info:
        load_volume(NAME, raw)
    assert info.value.kind == kind
    assert str(info.value).startswith(NAME + ": ")
    assert "\n" not in str(info.value)


def test_a_few_inf_voxels_are_counted():
    data = np.ones((4, 4, 4), np.float32)
    data[0, 0, 0], data[1, 2, 3] = np.inf, -np.inf
    with pytest.raises(VolumeError, match="2 NaN/Inf voxels"):
        load_volume(NAME, to_nifti_bytes(data))


@pytest.mark.parametrize("compress", [True, False])
def test_absurd_header_is_refused_from_the_header_without_allocating(compress):
    raw = _header_only((30000, 30000, 30000))
    raw = gzip.compress(raw) if compress else raw
    assert len(raw) < 1000  # the file itself is tiny; only its header lies
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(VolumeError, match=r"would need 108000\.0 GB.*refusing before reading the data") as info:
            load_volume(NAME, raw)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind == "too-large"
    assert elapsed < 1.0
    assert peak < 5 * 1024**2  # no voxel buffer was allocated


def test_nifti2_dimensions_beyond_int64_are_refused():
    header = nib.Nifti2Header()
    header.set_data_shape((2**40, 2**40, 2**40))  # prod overflows int64: must still be refused
    header.set_data_dtype(np.uint8)
    raw = gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 64)
    with pytest.raises(VolumeError, match="would need") as info:
        load_volume(NAME, raw)
    assert info.value.kind == "too-large"


def test_gzip_bomb_is_refused_while_decompressing():
    # header says 4x4x4 float32 (256 bytes of data), the stream inflates to 64 MB of zeros
    raw = _header_only((4, 4, 4), payload=b"\0" * (64 * 1024**2))
    bomb = gzip.compress(raw, compresslevel=9)
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(VolumeError, match="more than the 608 bytes its header announces") as info:
            load_volume(NAME, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind == "too-large"
    assert peak < 40 * 1024**2  # bounded by the header size + 16 MB slack, not 64 MB


def test_negative_header_dimension_is_not_nifti():
    raw = bytearray(_header_only((4, 4, 4)))
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(raw)))
    header["dim"][1] = -4
    raw[:348] = header.binaryblock
    with pytest.raises(VolumeError, match=r"invalid dimensions \(-4, 4, 4\)") as info:
        load_volume(NAME, bytes(raw))
    assert info.value.kind == "not-nifti"


def test_uncompressed_and_multi_member_gzip_are_read():
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) + 1
    plain = to_nifti_bytes(data, compress=False)
    assert load_volume("IXI001-HH-0001-T1.nii", plain).data.sum() == pytest.approx(data.sum())
    for cut in (1000, 200):  # 200: the header itself is split across two gzip members
        two_members = gzip.compress(plain[:cut]) + gzip.compress(plain[cut:])
        np.testing.assert_array_equal(load_volume(NAME, two_members).data, data)


def test_non_finite_affine_is_rejected():
    raw = bytearray(gzip.decompress(to_nifti_bytes(np.ones((4, 4, 4), np.float32))))
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(raw)))
    header["sform_code"] = 1
    header["srow_x"] = [np.nan, 0, 0, 0]
    raw[:348] = header.binaryblock
    with pytest.raises(VolumeError, match="invalid orientation") as info:
        load_volume(NAME, bytes(raw))
    assert info.value.kind == "bad-orientation"


def test_truncated_voxel_data_is_reported_on_one_line():
    raw = to_nifti_bytes(np.ones((8, 8, 8), np.float32), compress=False)[:-100]
    with pytest.raises(VolumeError) as info:
        load_volume(NAME, gzip.compress(raw))
    assert str(info.value) == f"{NAME}: cannot read voxel data (truncated: 2300 bytes, the header announces 2400)"
    assert info.value.kind == "unreadable-data"


def test_modality_of_ixi_names():
    assert ixi_modality("IXI002-Guys-0828-T2.nii.gz") == "T2"
    assert ixi_modality("IXI-T1/IXI002-Guys-0828-T1.nii.gz") == "T1"
    assert ixi_modality("IXI002-Guys-0828-DTI-00.nii.gz") == "DTI-00"
    assert ixi_modality("README.txt") is None and ixi_modality("IXI.xls") is None
    error = not_t1_error("IXI002-Guys-0828-MRA.nii.gz")
    assert str(error) == "IXI002-Guys-0828-MRA.nii.gz: not a T1 file (modality MRA)" and error.kind == "not-t1"
    assert not_t1_error("IXI002-Guys-0828_T1.nii.gz") is None
    assert not_t1_error("notes.txt") is None
