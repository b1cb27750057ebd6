"""Resolving a model reference (mrirecon.ops.model_source) against a real MLflow SQLite store in tmp_path."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from mrirecon.config import ModelSettings
from mrirecon.grid import GridPoint
from mrirecon.models.checkpoint import ModelSpec, read_spec, save_checkpoint
from mrirecon.models.training import build_model
from mrirecon.ops.model_source import ModelSourceError, resolve_model

POINT = GridPoint("image", 2, 8, 1, "medium")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A tracking store with two runs: one logs the checkpoint flat under ``model/``, the other nested under
    ``model/artifacts/checkpoint`` (as a pyfunc model may); both registered, the nested one as ``champion``."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("t", artifact_location=(root / "mlartifacts").as_uri())
    client.create_registered_model("mrirecon-medium")
    runs = []
    for depth, filters in (("", 4), ("artifacts/checkpoint", 6)):
        folder = root / f"ckpt-{filters}"
        folder.mkdir()
        save_checkpoint(build_model(POINT, 16, ModelSettings(base_filters=filters)), _spec(filters), folder)
        run = client.create_run(experiment, run_name=f"point-{filters}")
        client.log_artifacts(run.info.run_id, str(folder), "model" + (f"/{depth}" if depth else ""))
        client.set_terminated(run.info.run_id)
        client.create_model_version("mrirecon-medium", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        runs.append(run.info.run_id)
    client.set_registered_model_alias("mrirecon-medium", "champion", "2")
    return uri, runs, root


def _spec(filters: int) -> ModelSpec:
    return ModelSpec(POINT, ModelSettings(base_filters=filters), 16, f"run-{filters}")


@pytest.mark.parametrize(
    "reference,filters,run",
    [("models:/mrirecon-medium/1", 4, 0), ("models:/mrirecon-medium@champion", 6, 1), ("RUN0", 4, 0), ("RUN1", 6, 1)],
)
def test_registered_versions_aliases_and_run_ids_resolve_to_their_checkpoint(store, tmp_path, reference, filters, run):
    uri, runs, _ = store
    reference = runs[int(reference[3:])] if reference.startswith("RUN") else reference
    source = resolve_model(reference, tmp_path, uri)
    assert read_spec(source.folder) == _spec(filters)
    assert (source.folder / "model.weights.h5").is_file() and source.folder.is_relative_to(tmp_path)
    assert source.run_id == runs[run]


def test_runs_uri_and_local_folder_resolve(store, tmp_path):
    uri, runs, root = store
    assert read_spec(resolve_model(f"runs:/{runs[1]}/model", tmp_path, uri).folder).settings.base_filters == 6
    downloads = tmp_path / "local"
    downloads.mkdir()
    local = resolve_model(str(root / "ckpt-4"), downloads, None)
    assert local.folder == root / "ckpt-4" and local.run_id == ""
    assert not any(downloads.iterdir())  # nothing downloaded for a folder


@pytest.mark.parametrize(
    "reference,message",
    [
        ("models:/mrirecon-medium@nope", "no such registered model version or alias.*mrirecon-medium"),
        ("models:/missing/1", "no such registered model version"),
        ("0" * 32, "no MLflow run 0{32}"),
        ("not-a-model", "not a folder, a models:/"),
        ("models:/bad/uri/x", "expected models:/<name>@<alias>"),
    ],
)
def test_unknown_references_raise_naming_the_reference(store, tmp_path, reference, message):
    with pytest.raises(ModelSourceError, match=message):
        resolve_model(reference, tmp_path, store[0])


def test_a_folder_without_a_checkpoint_and_no_tracking_uri_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "spec.json").write_text(json.dumps({}))  # no weights beside it
    with pytest.raises(ModelSourceError, match="no spec.json with model.weights.h5"):
        resolve_model(str(tmp_path / "empty"), tmp_path, None)
    with pytest.raises(ModelSourceError, match="no MLflow tracking URI"):
        resolve_model("models:/x/1", tmp_path, None)
