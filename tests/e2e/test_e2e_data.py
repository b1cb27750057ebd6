"""End to end on the real IXI files: `mrirecon run` and `dvc repro` leave the same state."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import make_project_copy, project_env, run_cli

pytestmark = pytest.mark.e2e


def _outs_md5(lock_path) -> dict[str, str]:
    lock = yaml.safe_load(lock_path.read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def test_run_full_sample_data_stages(tmp_path, real_source):
    project = make_project_copy(tmp_path / "full", profile="params.yaml")
    env = project_env(real_source)
    result = run_cli(["mrirecon", "run", "--until", "masks"], project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    volumes = pq.read_table(project / "data/interim/volumes.parquet", columns=["subject", "sha256", "source"])
    slices = pq.read_table(project / "data/processed/slices.parquet", columns=["subject", "split"]).to_pandas()
    masks = pq.read_table(project / "data/processed/masks.parquet", columns=["intensity", "lines_kept"]).to_pandas()
    assert volumes.num_rows == 150 and len(slices) == 750 and len(masks) == 750 * 3
    assert set(volumes.column("source").to_pylist()) == {str(real_source)}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in volumes.column("sha256").to_pylist())
    groups = slices.groupby("split")["subject"].apply(set)
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
    assert slices.groupby("subject").size().eq(5).all()
    assert masks.groupby("intensity")["lines_kept"].mean().round().to_dict() == {
        "low": 64,
        "medium": 32,
        "high": 16,
    }  # W / R


def test_mrirecon_run_and_dvc_repro_agree(tmp_path, real_source):
    env = project_env(real_source)
    via_prefect = make_project_copy(tmp_path / "a")
    result = run_cli(["mrirecon", "run", "--until", "masks"], via_prefect, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    status = run_cli(["dvc", "status", "ingest", "select", "masks"], via_prefect, env)
    assert "up to date" in status.stdout, status.stdout
    again = run_cli(["dvc", "repro", "masks"], via_prefect, env)
    assert again.returncode == 0 and "didn't change, skipping" in again.stdout
    rerun = run_cli(["mrirecon", "run", "--until", "masks"], via_prefect, env)
    assert rerun.stdout.count("up to date") == 3, rerun.stdout

    via_dvc = make_project_copy(tmp_path / "b")
    result = run_cli(["dvc", "repro", "masks"], via_dvc, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Flow run" in result.stdout + result.stderr  # each stage ran as a Prefect flow
    assert _outs_md5(via_prefect / "dvc.lock") == _outs_md5(via_dvc / "dvc.lock")

    # changing a masks parameter re-runs masks only
    params = yaml.safe_load((via_dvc / "params.yaml").read_text())
    params["masks"]["seed"] = 99
    (via_dvc / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_cli(["dvc", "repro", "masks"], via_dvc, env)
    assert "Running stage 'masks'" in result.stdout and "Running stage 'ingest'" not in result.stdout


def test_no_source_fails_fast_naming_three_ways(tmp_path):
    project = make_project_copy(tmp_path / "c")
    env = project_env(None)
    result = run_cli(["mrirecon", "run", "--source", str(tmp_path / "missing")], project, env, timeout=60)
    assert result.returncode == 2
    assert all(k in result.stderr for k in ("--source", "MRIRECON_SOURCE", "params.yaml"))
