"""End to end on real IXI files, quick profile: the whole DAG, MLflow runs, reports, re-runs."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import tarfile

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import make_project_copy, project_env, run_cli
from mlflow.tracking import MlflowClient

from mrirecon.data.slice_set import load_slice_set

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished_project(tmp_path_factory, real_source):
    project = make_project_copy(tmp_path_factory.mktemp("pipeline") / "project")
    env = project_env(real_source)
    result = run_cli(["mrirecon", "run"], project, env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return project, env, result


def test_whole_dag_writes_reports_and_beats_zero_filled(finished_project):
    project, _, result = finished_project
    assert "best grid point" in result.stdout and "mrirecon ui" in result.stdout
    report = json.loads((project / "reports/metrics.json").read_text())
    assert set(report) == {"medium", "synthetic_phase", "findings"}  # conventions: reports/conventions.json
    assert set(report["findings"]["medium"]["best"]) == {report["medium"]["best"]["model"]}
    block = report["medium"]
    assert block["acceleration"] == 4.0
    assert block["effective_acceleration"]["hermitian"] < block["effective_acceleration"]["achieved"]
    # baselines beside the networks, with and without synthetic phase (same shape)
    assert block["cs"]["psnr"] > block["zero_filled"]["psnr"]
    assert set(report["synthetic_phase"]["medium"]) >= {"acceleration", "zero_filled", "cs", "best", "best_by_model"}
    assert set(block["best_by_model"]) == {"image", "kspace"}
    for entry in (block["best"], *block["best_by_model"].values()):
        assert {"run_id", "model", "params", "mse", "nmse", "psnr", "ssim", "pct_correct"} <= set(entry)
    # even two epochs on 28 subjects must beat the zero-filled reconstruction on the test subjects
    assert block["best_by_model"]["image"]["psnr"] > block["zero_filled"]["psnr"]
    assert block["best_by_model"]["image"]["mse"] < block["zero_filled"]["mse"]
    rows = list(csv.DictReader(open(project / "reports/grid.csv")))
    assert sorted(r["name"] for r in rows) == ["image-L2-B8-E2-medium", "kspace-L2-B8-E2-medium"]
    assert (project / "reports/findings.csv").exists() and (project / "reports/plots/sweep.csv").exists()
    for name in ("metrics_vs_acceleration.png", "reconstructions_medium.png", "lesions_medium.png"):
        assert (project / "reports/figures" / name).stat().st_size > 10_000
    # lesion check: every method scored on the same inserted lesions, which undersampling weakens
    lesions = block["lesions"]
    assert set(lesions) == {"zero_filled", "cs", "best"}
    assert len({entry["lesions"] for entry in lesions.values()}) == 1
    assert 0 < lesions["zero_filled"]["contrast_recovery"] < 1
    assert all(r["lesion_contrast_recovery"] for r in rows)
    assert "Lesions and hallucinations" in result.stdout  # `mrirecon show`, printed at the end of the run


def test_report_regenerates_every_readme_block(finished_project, tmp_path):
    project, env, _ = finished_project
    markers = ["benchmark-table", "findings-table", "lesion-table"]
    readme = tmp_path / "README.md"
    readme.write_text("".join(f"<!-- {m}:start -->\nSTALE-BLOCK\n<!-- {m}:end -->\n" for m in markers))
    result = run_cli(["mrirecon", "report", "--readme", str(readme), "--title", "Quick"], project, env)
    assert result.returncode == 0, result.stderr[-2000:]
    text = readme.read_text()
    assert "STALE-BLOCK" not in text and text.count("<!-- ") == 6
    best = json.loads((project / "reports/metrics.json").read_text())["medium"]["best"]["name"]
    lesion_block = text[text.index("<!-- lesion-table:start -->") : text.index("<!-- lesion-table:end -->")]
    assert f"\n| medium | 4 | best: {best} | " in lesion_block  # the lesion table names the best grid point


def test_mlflow_parent_and_child_runs(finished_project):
    project, _, _ = finished_project
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mrirecon")
    assert experiment.artifact_location == (project / "mlartifacts").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("role") == "parent"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # a readable name (profile, local start time, short commit), the code's commit not made dirty by the run
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    assert parents[0].data.tags["git_commit"] == head
    assert re.fullmatch(rf"quick \d{{4}}-\d\d-\d\d \d\d:\d\d {head[:7]}", parents[0].info.run_name)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert client.search_registered_models() == []  # the quick profile registers no models
    parent_id = parents[0].info.run_id
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    assert len(children) == 2
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"model", "layers", "batch_size", "epochs", "intensity", "learning_rate"} <= set(child.data.params)
        assert {
            "val_mse",
            "test_mse",
            "test_psnr",
            "test_ssim",
            "test_nmse",
            "test_pct_correct",
            "wall_time_s",
            "train_psnr",
            "psnr_gap_db",
            "noisy_psnr",
        } <= set(child.data.metrics)
        assert len(client.get_metric_history(child.info.run_id, "val_loss")) == 2  # one per epoch
        assert child.data.tags["data_version"].startswith("slices:")
        assert child.data.tags["git_commit"] == head and child.data.tags["profile"] == "quick"
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "model/artifacts/checkpoint")}
        assert "model/artifacts/checkpoint/model.weights.h5" in artifacts  # inside the MLflow model
        assert child.data.params["recipe.percentile"] == "99.5" and "recipe.pixel_mm" in child.data.params
        assert [a.path for a in client.list_artifacts(child.info.run_id, "images")] == ["images/test_slices.png"]
    assert {"medium_best_psnr", "medium_zero_filled_psnr"} <= set(parents[0].data.metrics)


def test_repro_is_clean_and_a_grid_change_reruns_only_train_and_evaluate(finished_project):
    project, env, _ = finished_project
    status = run_cli(["dvc", "status"], project, env)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["grid"]["epochs"] = [1]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_cli(["dvc", "repro"], project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ran = set(__import__("re").findall(r"Running stage '(\w+)'", result.stdout))
    assert ran == {"train", "evaluate"}
    rows = list(csv.DictReader(open(project / "reports/grid.csv")))
    assert sorted(r["epochs"] for r in rows) == ["1", "1"]
    assert run_cli(["dvc", "status"], project, env).stdout.strip().endswith("up to date.")


def test_evaluate_on_other_volumes(finished_project, real_source, tmp_path):
    project, env, _ = finished_project
    files = sorted(real_source.glob("IXI*_T1.nii.gz"))[-3:]  # subjects outside the quick profile's 40
    archive = tmp_path / "IXI-T1.tar"
    with tarfile.open(archive, "w") as tar:
        for path in files:
            tar.add(path, arcname=f"IXI-T1/{path.name}")
    out = tmp_path / "external"
    result = run_cli(["mrirecon", "evaluate", "--source", str(archive), "--out", str(out)], project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "metrics.json").read_text())
    assert report["medium"]["best"]["psnr"] > 15
    assert (out / "work" / "slices.parquet").exists() and (out / "grid.csv").exists()
    assert run_cli(["dvc", "status"], project, env).stdout.strip().endswith("up to date.")  # data/ untouched

    # a params.yaml that disagrees with the models' recipe is reported in one line and not used
    original = (project / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["slices"]["percentile"] = 90.0
    params["masks"]["intensities"]["medium"]["acceleration"] = 5.0
    try:
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        changed = tmp_path / "external-changed"
        result = run_cli(["mrirecon", "evaluate", "--source", str(archive), "--out", str(changed)], project, env)
    finally:
        (project / "params.yaml").write_text(original)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("params.yaml differs")]
    assert lines == [
        "params.yaml differs from the trained models' recipe (following the recipe): "
        "masks.intensities.medium.acceleration: model 4.0, params.yaml 5.0; slices.percentile: model 99.5, "
        "params.yaml 90.0"
    ]
    scales = [
        pq.read_table(d / "work" / "slices.parquet", columns=["scale"]).column(0).to_pylist() for d in (out, changed)
    ]
    assert scales[0] == scales[1]  # normalised with the recipe's percentile
    assert (
        load_slice_set(changed / "work/slices.parquet", changed / "work/masks.parquet", "medium", None).acceleration
        == 4.0
    )
    assert json.loads((changed / "metrics.json").read_text())["medium"]["best"] == report["medium"]["best"]


def test_changing_the_fft_module_makes_the_stages_that_use_it_stale(finished_project):
    """DVC deps are whole core subpackages: editing mrirecon/mri/fft.py (the k-space convention)
    makes masks, train and evaluate stale, and not ingest or select (which never use it)."""
    project, env, _ = finished_project
    fft = project / "mrirecon" / "mri" / "fft.py"
    original = fft.read_text()
    try:
        fft.write_text(original + "\n# a changed k-space convention\n")
        status = run_cli(["dvc", "status", "--json"], project, env)
        assert status.returncode == 0, status.stderr[-2000:]
        stale = set(json.loads(status.stdout))
        assert stale == {"masks", "train", "evaluate"}, status.stdout
    finally:
        fft.write_text(original)
    assert run_cli(["dvc", "status"], project, env).stdout.strip().endswith("up to date.")
