"""A trained grid point as an MLflow pyfunc model (mrirecon.ops.mlflow_model): logged by the training worker with
its recipe, registered as ``mrirecon-<intensity>@champion`` (tasks.registry), loaded back with
``mlflow.pyfunc.load_model`` and equal to the project's own reconstruction (real SQLite store, 16x16 slices)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from helpers import tiny_slices_and_masks

from mrirecon.config import ModelSettings, ProfileParams
from mrirecon.data.slice_set import load_slice_set
from mrirecon.grid import GridPoint, training_groups
from mrirecon.models.checkpoint import load_trained_model, read_spec
from mrirecon.models.inference import reconstruct
from mrirecon.models.recipe import Recipe
from mrirecon.mri.forward import measure

RECIPE = Recipe(
    intensity="medium",
    acceleration=4.0,
    center_fraction=0.125,
    mask_type="random",
    mask_seed=1,
    synthetic_phase=False,
    phase_seed=3,
    percentile=99.5,
    size=16,
    pixel_mm=(2.0, 2.0),
    window_mm=(20.0, 70.0),
)


def test_a_registered_champion_loads_with_pyfunc_and_reconstructs_like_the_project(tmp_path, mlflow_store):
    from prefect.logging import disable_run_logger

    from mrirecon.ops import tracking
    from mrirecon.ops.mlflow_model import input_example
    from mrirecon.ops.worker import TrainJob, train_job
    from tasks.registry import register_best_task

    slices, masks = tiny_slices_and_masks(tmp_path)
    settings = ModelSettings(kspace_filters=4, seed=3)
    point = GridPoint("kspace", 2, 2, 2, "medium")
    [group] = training_groups([point])
    experiment = tracking.ensure_experiment(tmp_path, "test")
    parent = tracking.start_run(tmp_path, experiment, "pipeline", {"role": "parent"})
    job = TrainJob(group, settings, tmp_path, slices, masks, tmp_path / "models", experiment, parent,
                   tracking_uri=mlflow_store, recipe=RECIPE)  # fmt: skip
    [result] = train_job(job)

    # the recipe is in spec.json and in the child run's params; the run's model/ is an MLflow model
    folder = tmp_path / result["model_dir"]
    assert read_spec(folder).recipe == RECIPE
    client = tracking.client_for(tmp_path)
    run = client.get_run(result["run_id"])
    assert run.data.params["recipe.acceleration"] == "4.0" and run.data.params["recipe.percentile"] == "99.5"
    assert run.data.params["recipe.pixel_mm"] == "(2.0, 2.0)" and run.data.params["recipe.size"] == "16"
    assert run.data.metrics["model_log_s"] > 0
    print(f"MLflow model saved and logged in {run.data.metrics['model_log_s']:.2f} s")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"history.json", "model"}
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/MLmodel", "model/input_example.json", "model/requirements.txt", "model/artifacts"} <= logged
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts/checkpoint")] == [
        "model/artifacts/checkpoint/model.weights.h5",
        "model/artifacts/checkpoint/spec.json",
    ]

    # registered as the champion by the registry task
    best = {"name": point.name, "run_id": result["run_id"], "val_mse": result["val_mse"], "psnr": 20.0, "ssim": 0.5}
    report = {"medium": {"acceleration": 4.0, "best": best}}
    with disable_run_logger():
        registered = register_best_task.fn(tmp_path, report, ProfileParams())
    assert registered == {"medium": {"name": "mrirecon-medium", "version": "1", "champion": True}}
    champion = mlflow.pyfunc.load_model("models:/mrirecon-medium@champion")
    info = champion.metadata
    assert info.get_input_schema().input_names() == ["kspace", "mask"]
    assert info.get_input_schema().inputs[0].shape == (-1, 16, 16, 2)
    assert info.get_output_schema().inputs[0].shape == (-1, 16, 16)
    assert info.metadata["recipe"]["acceleration"] == 4.0

    # its input example: a masked phantom, reconstructed to (1, 16, 16)
    network, spec = load_trained_model(folder)
    example = input_example(spec)
    assert example["kspace"].shape == (1, 16, 16, 2) and example["mask"].shape == (1, 16)
    assert np.all(example["kspace"][0][:, example["mask"][0] == 0] == 0)  # unmeasured columns are 0
    recon = champion.predict(example)
    assert recon.shape == (1, 16, 16) and recon.dtype == np.float32

    # on real slices: equal to the project's reconstruct() of the same checkpoint
    val = load_slice_set(slices, masks, "medium", "val")
    measured, _ = measure(val, False, settings.seed)
    model_input = {
        "kspace": np.stack([measured.real, measured.imag], axis=-1).astype(np.float32),
        "mask": val.masks.astype(np.float32),
    }
    expected = reconstruct(network, "kspace", val, settings=settings)
    np.testing.assert_allclose(champion.predict(model_input), expected, rtol=1e-4, atol=1e-5)
    assert np.std(expected) > 0

    # the project's own loader reads the checkpoint inside the downloaded MLflow model
    uri = f"runs:/{result['run_id']}/model"
    downloaded = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "dl")))
    [spec_file] = downloaded.rglob("spec.json")
    again, spec_again = load_trained_model(spec_file.parent)
    assert spec_again == spec and spec_again.recipe == RECIPE
    for a, b in zip(again.get_weights(), network.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_recipe_is_part_of_the_config_hash_so_points_without_one_are_retrained():
    from tasks.train import config_hash

    point, settings = GridPoint("kspace", 2, 2, 2, "medium"), ModelSettings(kspace_filters=4)
    before = config_hash(point, settings, "v")  # as written into result.json before recipes existed
    with_recipe = config_hash(point, settings, "v", RECIPE)
    assert with_recipe != before and with_recipe == config_hash(point, settings, "v", RECIPE.model_copy())
    assert config_hash(point, settings, "v", RECIPE.model_copy(update={"percentile": 99.0})) != with_recipe
