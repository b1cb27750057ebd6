"""fastMRI volume-convention metrics on hand-computed pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrirecon.mri.volume_metrics import per_subject, volume_metrics


def test_volume_metrics_on_a_hand_computed_pair():
    ref = np.zeros((2, 8, 8))
    ref[0, 2:6, 2:6] = 1.0  # 16 voxels of 1
    ref[1, 2:6, 2:6] = 2.0  # 16 voxels of 2: the volume maximum is 2
    est = ref.copy()
    est[1, 3, 3] += 0.5  # one voxel off by 0.5
    m = volume_metrics(ref, est)
    # NMSE = 0.25 / (16 * 1 + 16 * 4) = 0.25 / 80
    assert m["volume_nmse"] == pytest.approx(0.25 / 80)
    # PSNR = 10 log10(2^2 / (0.25 / 128)) with the *volume* maximum 2, not the slice maxima 1 and 2
    assert m["volume_psnr"] == pytest.approx(10 * math.log10(4 / (0.25 / 128)))
    assert m["volume_ssim"] < 1.0
    same = volume_metrics(ref, ref)
    assert same == {"volume_nmse": 0.0, "volume_psnr": math.inf, "volume_ssim": 1.0}


def test_volume_psnr_exceeds_the_per_slice_psnr_of_a_dim_slice():
    from mrirecon.mri.metrics import psnr

    rng = np.random.default_rng(0)
    ref = np.stack([np.full((16, 16), 1.0), np.full((16, 16), 0.25)])
    est = ref + rng.normal(0, 0.01, ref.shape)
    # the dim slice's own maximum (0.25) is below the volume maximum (1.0): lower PSNR per slice
    assert volume_metrics(ref[1:], est[1:])["volume_psnr"] == pytest.approx(psnr(ref[1], est[1]))
    assert psnr(ref[1], est[1], data_range=1.0) > psnr(ref[1], est[1])


def test_per_subject_groups_slices_and_rejects_mismatches():
    ref = np.ones((3, 8, 8))
    est = ref.copy()
    est[2] = 0.5
    out = per_subject(ref, est, ["b", "a", "a"])
    assert list(out) == ["b", "a"]
    assert out["b"]["volume_nmse"] == 0.0
    assert out["a"]["volume_nmse"] == pytest.approx(0.25 * 64 / 128)
    with pytest.raises(ValueError, match="2 subject ids for 3 slices"):
        per_subject(ref, est, ["a", "b"])
