"""The training stage (mrirecon.stages.train), shared trainings of points that differ only in epochs
(mrirecon.models.training) and the worker that logs them to MLflow (mrirecon.ops.worker), on a few
synthetic 16x16 slices (CPU, seconds)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from helpers import tiny_slices_and_masks as _slices_and_masks

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet
from mrirecon.grid import GridPoint, TrainingGroup, expand_grid, training_groups
from mrirecon.models.checkpoint import ModelSpec, load_trained_model, read_spec
from mrirecon.models.training import TrainResult, train_point
from mrirecon.ops.worker import TrainJob
from mrirecon.stages.train import TrainedPoint, plan_trainings, publish, train_group


def _slice_set(n: int, seed: int) -> SliceSet:
    """``n`` random 16x16 slices with a fixed 6-of-16-line mask, of an intensity ``medium`` (R = 4,
    centre fraction 0.125, random masks: what ``train.resample_masks`` redraws from)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 16), bool)
    masks[:, [0, 5, 7, 8, 9, 12]] = True
    return SliceSet(
        rng.random((n, 16, 16)).astype(np.float32),
        masks,
        [f"IXI{i:03d}-HH-0000" for i in range(n)],
        np.arange(n) + 40,
        4.0,
        "medium",
        0.125,
        "random",
    )


def _weights(model) -> list[np.ndarray]:
    return [np.array(w, copy=True) for w in model.get_weights()]


@pytest.mark.parametrize(
    "model,settings",
    [
        ("image", ModelSettings(base_filters=4, learning_rate=3e-3, seed=3)),
        ("image", ModelSettings(base_filters=4, learning_rate=3e-3, seed=3, image_data_consistency=True)),
        ("kspace", ModelSettings(kspace_filters=4, learning_rate=3e-3, seed=3)),
        # a fresh mask per training slice and epoch: epoch e's batches depend on e alone
        ("image", ModelSettings(base_filters=4, learning_rate=3e-3, seed=3, resample_masks=True)),
        ("kspace", ModelSettings(kspace_filters=4, learning_rate=3e-3, seed=3, resample_masks=True)),
    ],
)
def test_checkpoints_of_a_shared_training_equal_separate_trainings(model, settings):
    """The 2-epoch checkpoint of a 3-epoch training is a 2-epoch training (weights, history, val MSE)."""
    train, val = _slice_set(6, 0), _slice_set(2, 1)
    seen: dict[int, tuple[list[np.ndarray], TrainResult]] = {}

    def keep(result: TrainResult) -> None:
        seen[result.epochs_run] = (_weights(result.model), result)

    shared = train_point(GridPoint(model, 2, 2, 3, "medium"), train, val, settings, None, 0, (2, 3), keep)
    assert sorted(seen) == [2, 3] and seen[3][1] is shared
    differences = []
    for epochs in (2, 3):
        alone = train_point(GridPoint(model, 2, 2, epochs, "medium"), train, val, settings, verbose=0)
        weights, result = seen[epochs]
        for got, expected in zip(weights, alone.model.get_weights(), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        differences.append(max(float(np.max(np.abs(g - e))) for g, e in zip(weights, alone.model.get_weights())))
        assert result.history.keys() == alone.history.keys() and len(result.history["loss"]) == epochs
        np.testing.assert_allclose(result.history["val_loss"], alone.history["val_loss"], rtol=1e-5)
        np.testing.assert_allclose(result.val_mse, alone.val_mse, rtol=1e-5)
        assert (result.epochs_run, result.stopped_early) == (alone.epochs_run, alone.stopped_early) == (epochs, False)
    print(f"{model}: max |shared - separate| weight difference at epochs 2, 3: {differences}")
    # training moved the weights between the checkpoints, so the equality above is not vacuous
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(seen[2][0], seen[3][0])) > 1e-4


def test_checkpoints_refused_with_early_stopping_and_outside_the_training():
    train, val = _slice_set(4, 0), _slice_set(2, 1)
    point = GridPoint("kspace", 2, 2, 3, "medium")
    with pytest.raises(ValueError, match="early_stopping_patience off"):
        train_point(point, train, val, ModelSettings(kspace_filters=4, early_stopping_patience=2), verbose=0,
                    checkpoints=(2, 3))  # fmt: skip
    with pytest.raises(ValueError, match=r"outside 1..3"):
        train_point(point, train, val, ModelSettings(kspace_filters=4), verbose=0, checkpoints=(4,))


def test_train_group_stages_then_publishes_one_point(tmp_path):
    slices, masks = _slices_and_masks(tmp_path)
    point, settings = GridPoint("kspace", 2, 2, 2, "medium"), ModelSettings(kspace_filters=4, seed=3)
    seen: dict = {"epochs": []}

    def on_data(train, val):
        seen["sizes"] = (len(train), len(val), train.acceleration)

    def on_epoch(epoch, logs):
        seen["epochs"].append((epoch, sorted(logs)))

    models = tmp_path / "models"
    group = TrainingGroup(point.training_name, (point,))
    [trained] = train_group(group, settings, slices, masks, models, {point.name: "run-1"}, on_data, on_epoch)
    assert seen == {"sizes": (4, 2, 4.0), "epochs": [(1, ["loss", "val_loss"]), (2, ["loss", "val_loss"])]}
    assert trained.staging == models / ".kspace-L2-B2-E2-medium.tmp" and not trained.destination.exists()
    assert sorted(p.name for p in trained.staging.iterdir()) == ["history.json", "model.weights.h5", "spec.json"]
    assert trained.epochs_run == 2 and not trained.stopped_early and np.isfinite(trained.val_mse)
    history = json.loads((trained.staging / "history.json").read_text())
    assert list(history) == ["loss", "val_loss"] and len(history["loss"]) == 2

    out = publish(trained, {"name": point.name, "val_mse": trained.val_mse})
    assert out == models / point.name and not trained.staging.exists()
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "model.weights.h5", "result.json", "spec.json"]
    assert json.loads((out / "result.json").read_text()) == {"name": point.name, "val_mse": trained.val_mse}
    assert read_spec(out) == ModelSpec(point, settings, 16, "run-1")


def test_a_shared_training_publishes_each_point_at_its_epochs(tmp_path):
    slices, masks = _slices_and_masks(tmp_path)
    settings = ModelSettings(kspace_filters=4, seed=3)
    grid = [GridPoint("kspace", 2, 2, e, "medium") for e in (1, 2, 4)]
    [group] = training_groups(grid)
    models = tmp_path / "models"
    events: list = []

    def on_epoch(epoch, logs):
        events.append(("epoch", epoch))

    def on_trained(trained: TrainedPoint):
        events.append(("point", trained.point.epochs))
        publish(trained, {"name": trained.point.name})
        assert (models / trained.point.name / "result.json").exists()  # published before training goes on

    run_ids = {p.name: f"run-{p.epochs}" for p in grid}
    trained = train_group(group, settings, slices, masks, models, run_ids, None, on_epoch, on_trained)
    assert events == [
        ("epoch", 1), ("point", 1), ("epoch", 2), ("point", 2), ("epoch", 3), ("epoch", 4), ("point", 4)
    ]  # fmt: skip
    assert [t.point for t in trained] == grid and [t.epochs_run for t in trained] == [1, 2, 4]
    assert sorted(p.name for p in models.iterdir()) == sorted(p.name for p in grid)  # no staging folder left
    full = json.loads((models / grid[-1].name / "history.json").read_text())
    walls = [t.wall_time_s for t in trained]
    assert walls == sorted(walls) and walls[0] > 0
    for point in grid:
        folder = models / point.name
        assert sorted(p.name for p in folder.iterdir()) == [
            "history.json", "model.weights.h5", "result.json", "spec.json"
        ]  # fmt: skip
        history = json.loads((folder / "history.json").read_text())
        assert {k: len(v) for k, v in history.items()} == {"loss": point.epochs, "val_loss": point.epochs}
        assert history == {k: v[: point.epochs] for k, v in full.items()}
        assert read_spec(folder) == ModelSpec(point, settings, 16, f"run-{point.epochs}")
    # each folder holds the weights of its own epoch
    first, last = (load_trained_model(models / p.name)[0].get_weights() for p in (grid[0], grid[-1]))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(first, last)) > 1e-4


def test_train_group_resamples_masks_with_the_parameters_of_masks_parquet(tmp_path):
    from mrirecon.models.training import epoch_masks
    from mrirecon.stages.train import load_training_data
    from tasks.train import config_hash

    slices, masks = _slices_and_masks(tmp_path)
    train, val = load_training_data(slices, masks, "medium")
    assert (train.intensity, train.acceleration, train.center_fraction, train.mask_type) == (
        "medium", 4.0, 0.125, "random"
    )  # fmt: skip
    fresh = epoch_masks(train, 3, 1)
    assert fresh[:, 7:9].all() and np.any(fresh != train.masks, axis=1).all()  # round(16 * 0.125) = 2 centre lines
    point = GridPoint("kspace", 2, 2, 2, "medium")
    settings = ModelSettings(kspace_filters=4, seed=3, resample_masks=True)
    [trained] = train_group(TrainingGroup(point.training_name, (point,)), settings, slices, masks, tmp_path / "m")
    assert trained.epochs_run == 2 and np.isfinite(trained.val_mse)
    assert read_spec(trained.staging).settings.resample_masks is True
    # the option is part of a point's configuration: turning it on never reuses a point trained without it
    assert config_hash(point, settings, "v") != config_hash(
        point, settings.model_copy(update={"resample_masks": False}), "v"
    )


def test_early_stopping_trains_every_point_alone(tmp_path):
    grid = {"model": ["image"], "layers": [2, 3], "batch_size": [16], "epochs": [5, 10, 20], "intensity": ["medium"]}
    points = expand_grid(grid, ["medium"])
    shared = plan_trainings(points, ModelSettings())
    assert [(g.name, g.epochs) for g in shared] == [
        ("image-L2-B16-medium", (5, 10, 20)),
        ("image-L3-B16-medium", (5, 10, 20)),
    ]
    alone = plan_trainings(points, ModelSettings(early_stopping_patience=2))
    assert [g.points for g in alone] == [(p,) for p in points] and alone[0].name == "image-L2-B16-E5-medium"

    slices, masks = _slices_and_masks(tmp_path)
    settings = ModelSettings(kspace_filters=4, learning_rate=0.05, early_stopping_patience=1, seed=3)
    point = GridPoint("kspace", 2, 2, 6, "medium")
    [group] = plan_trainings([point], settings)
    [trained] = train_group(group, settings, slices, masks, tmp_path / "models")
    assert trained.point == point and trained.staging == tmp_path / "models" / f".{point.name}.tmp"
    history = json.loads((trained.staging / "history.json").read_text())
    assert 1 <= trained.epochs_run == len(history["loss"]) <= 6
    with pytest.raises(ValueError, match="early_stopping_patience off"):
        train_group(
            TrainingGroup("x", (GridPoint("kspace", 2, 2, 2, "medium"), point)), settings, slices, masks, tmp_path
        )


def test_train_job_crosses_a_process_boundary_as_typed_objects(tmp_path):
    points = tuple(GridPoint("image", 3, 16, e, "medium", True) for e in (5, 20))
    job = TrainJob(
        group=TrainingGroup("image-L3-B16-medium-phase", points),
        settings=ModelSettings(cascades=2),
        root=tmp_path,
        slices=tmp_path / "slices.parquet",
        masks=tmp_path / "masks.parquet",
        models_dir=tmp_path / "models",
        experiment_id="1",
        parent_run_id="parent",
        tags={"data_version": "v"},
        config_hashes=("abc", "def"),
        threads=2,
    )
    copy = pickle.loads(pickle.dumps(job))
    assert copy == job and isinstance(copy.group.points[0], GridPoint) and isinstance(copy.settings, ModelSettings)
    assert copy.config_hash(points[1]) == "def"
    with pytest.raises(ValueError, match="1 config hashes for 2 grid points"):
        TrainJob(job.group, job.settings, tmp_path, tmp_path, tmp_path, tmp_path, "1", "p", config_hashes=("abc",))


def test_worker_logs_one_child_run_per_point_and_resumes_the_unfinished_ones(tmp_path, mlflow_store):
    from mrirecon.ops import tracking
    from mrirecon.ops.worker import train_job
    from tasks.train import config_hash, finished_point

    slices, masks = _slices_and_masks(tmp_path)
    settings = ModelSettings(kspace_filters=4, seed=3)
    grid = [GridPoint("kspace", 2, 2, e, "medium") for e in (1, 3)]
    [group] = training_groups(grid)
    models = tmp_path / "models"
    experiment = tracking.ensure_experiment(tmp_path, "test")
    parent = tracking.start_run(tmp_path, experiment, "pipeline", {"role": "parent"})

    def job(group: TrainingGroup) -> TrainJob:
        hashes = tuple(config_hash(p, settings, "v") for p in group.points)
        return TrainJob(group, settings, tmp_path, slices, masks, models, experiment, parent, {"data_version": "v"},
                        hashes, mlflow_store)  # fmt: skip

    # a file where the 3-epoch point's folder goes makes its publishing fail after the 1-epoch point is published
    models.mkdir()
    (models / grid[1].name).write_text("in the way")
    with pytest.raises(OSError):
        train_job(job(group))
    client = tracking.client_for(tmp_path)
    found = client.search_runs([experiment], f"tags.training = '{group.name}'")
    runs = {r.data.tags["grid_point"]: r for r in found}
    assert {name: r.info.status for name, r in runs.items()} == {grid[0].name: "FINISHED", grid[1].name: "FAILED"}
    first = finished_point(tmp_path, models, grid[0], settings, "v")
    assert first is not None and first["run_id"] == runs[grid[0].name].info.run_id and first["epochs_run"] == 1
    assert finished_point(tmp_path, models, grid[1], settings, "v") is None

    # resume: only the unfinished point is trained (to its 3 epochs) and logged
    (models / grid[1].name).unlink()
    unfinished = group.subset(p for p in grid if finished_point(tmp_path, models, p, settings, "v") is None)
    assert unfinished.points == (grid[1],)
    [result] = train_job(job(unfinished))
    assert json.loads((models / grid[0].name / "result.json").read_text()) == first  # untouched
    assert result == json.loads((models / grid[1].name / "result.json").read_text())
    assert result["epochs_run"] == 3 and result["model_dir"] == f"models/{grid[1].name}"
    assert result["config_hash"] == config_hash(grid[1], settings, "v")
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["training"] == group.name
    assert run.data.tags["mlflow.parentRunId"] == parent and run.data.params["epochs"] == "3"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2, 3]
    assert [m.step for m in client.get_metric_history(first["run_id"], "loss")] == [1]
    assert {"val_mse", "wall_time_s", "epochs_run", "peak_rss_mb"} <= set(run.data.metrics)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts/checkpoint")] == [
        f"model/artifacts/checkpoint/{f}" for f in ("model.weights.h5", "spec.json")
    ]  # inside the MLflow model (tests/ops/test_mlflow_model.py)
    assert "history.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
