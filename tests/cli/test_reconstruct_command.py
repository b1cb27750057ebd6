"""``mrirecon reconstruct`` end to end (the installed console command, a subprocess) on a small 2 mm synthetic
volume with a checkpoint folder, and its one-line errors (in-process, typer's CliRunner)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import ROOT, VENV_BIN
from helpers import ixi_like_nifti
from typer.testing import CliRunner

from mrirecon.cli import app
from mrirecon.config import ModelSettings
from mrirecon.grid import GridPoint
from mrirecon.models.checkpoint import ModelSpec, save_checkpoint
from mrirecon.models.recipe import Recipe
from mrirecon.models.training import build_model

POINT = GridPoint("image", 2, 8, 1, "medium")
SETTINGS = ModelSettings(base_filters=4)
RECIPE = Recipe(
    intensity="medium", acceleration=4.0, center_fraction=0.08, mask_type="random", mask_seed=1234,
    synthetic_phase=False, phase_seed=0, percentile=99.5, size=64, pixel_mm=(2.0, 2.0), window_mm=(20.0, 70.0),
)  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / POINT.name
    folder.mkdir()
    save_checkpoint(build_model(POINT, 64, SETTINGS), ModelSpec(POINT, SETTINGS, 64, "", RECIPE), folder)
    return folder


def test_reconstruct_writes_volumes_panel_and_summary(tmp_path, checkpoint):
    source = ixi_like_nifti(tmp_path / "scan.nii.gz", (60, 60, 45), (2.0, 2.0, 2.0), np.uint8, 4.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = ["--model", str(checkpoint), "--input", str(tmp_path / "scan.nii.gz"), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [str(VENV_BIN / "mrirecon"), "reconstruct", *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reconstruction: PSNR" in done.stdout and "warning" not in done.stderr
    names = ["reference", "zero_filled", "reconstruction", "error", "field_of_view"]
    for name in names:
        image = nib.load(tmp_path / "out" / f"{name}.nii.gz")
        assert image.shape == (60, 60, 45) and np.array_equal(image.affine, source.affine)
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["input"]["axcodes"] == "PSR" and summary["slices_reconstructed"] == 60  # RAS z = on-disk S
    assert summary["model"]["grid_point"] == POINT.name and summary["recipe"]["size"] == 64
    assert summary["simulation"]["acceleration"] == 4.0 and summary["simulation"]["warnings"] == []
    assert summary["masks"]["width"] == 64 and 3.0 < summary["masks"]["achieved_acceleration"] < 5.5
    zf, recon = summary["metrics"]["zero_filled"], summary["metrics"]["reconstruction"]
    assert 10 < zf["psnr"] < 50 and 0 < zf["ssim"] < 1 and 0 < zf["nmse"] < 1
    assert recon["psnr"] == pytest.approx(zf["psnr"], abs=0.01)  # an untrained image model returns its input
    assert summary["normalisation_scale"] == pytest.approx(np.percentile(source.get_fdata(), 99.5))
    assert (tmp_path / "out/panel.png").stat().st_size > 5_000


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing", "missing.nii.gz: no such file"),
        ("4d", "expected a 3D volume"),
        ("unknown-model", "not a folder, a models:/"),
        ("no-recipe", "has no recipe.*retrain the grid point"),
        ("bad-override", "larger than 1/acceleration"),
    ],
)
def test_bad_input_model_or_options_fail_with_one_line(tmp_path, checkpoint, case, message):
    scan = tmp_path / "scan.nii.gz"
    ixi_like_nifti(scan, (20, 20, 16), (2.0, 2.0, 2.0))
    model, extra = str(checkpoint), []
    if case == "missing":
        scan = tmp_path / "missing.nii.gz"
    elif case == "4d":
        nib.save(nib.Nifti1Image(np.ones((4, 5, 6, 2), np.float32), np.eye(4)), scan)
    elif case == "unknown-model":
        model = "no-such-model"
    elif case == "no-recipe":
        spec = json.loads((checkpoint / "spec.json").read_text())
        del spec["recipe"]
        old = tmp_path / "old"
        old.mkdir()
        (old / "spec.json").write_text(json.dumps(spec))
        (old / "model.weights.h5").write_bytes((checkpoint / "model.weights.h5").read_bytes())
        model = str(old)
    else:
        extra = ["--acceleration", "16"]
    result = CliRunner().invoke(
        app, ["reconstruct", "--model", model, "--input", str(scan), "--out", str(tmp_path / "o"), *extra]
    )
    assert result.exit_code == 2
    assert result.output.count("error:") == 1
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "o").exists()
