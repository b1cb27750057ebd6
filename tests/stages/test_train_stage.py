"""The training stage of one grid point (mrirecon.stages.train) and the typed job of its worker process,
on a few synthetic 16x16 slices (CPU, seconds)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mrirecon.config import ModelSettings
from mrirecon.data.storage import encode_array
from mrirecon.grid import GridPoint
from mrirecon.models.checkpoint import ModelSpec, read_spec
from mrirecon.mri.subsample import Intensity
from mrirecon.ops.worker import TrainJob
from mrirecon.stages.masks import generate_masks
from mrirecon.stages.train import publish, train_grid_point


def _slices_and_masks(folder: Path) -> tuple[Path, Path]:
    """``slices.parquet`` with 4 train and 2 val slices of 16x16 random images, and their ``medium`` masks."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "subject": f"IXI{i:03d}-HH-0000",
            "slice_index": 40,
            "split": "train" if i < 4 else "val",
            "height": 16,
            "width": 16,
            "image": encode_array(rng.random((16, 16))),
        }
        for i in range(6)
    ]
    slices, masks = folder / "slices.parquet", folder / "masks.parquet"
    pq.write_table(pa.Table.from_pylist(rows), slices)
    generate_masks(slices, masks, [Intensity(name="medium", acceleration=4.0, center_fraction=0.125)], "random", 1)
    return slices, masks


def test_train_grid_point_stages_then_publishes(tmp_path):
    slices, masks = _slices_and_masks(tmp_path)
    point, settings = GridPoint("kspace", 2, 2, 2, "medium"), ModelSettings(kspace_filters=4, seed=3)
    seen: dict = {"epochs": []}

    def on_data(train, val):
        seen["sizes"] = (len(train), len(val), train.acceleration)

    def on_epoch(epoch, logs):
        seen["epochs"].append((epoch, sorted(logs)))

    models = tmp_path / "models"
    trained = train_grid_point(point, settings, slices, masks, models, "run-1", on_data, on_epoch)
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


def test_train_job_crosses_a_process_boundary_as_typed_objects(tmp_path):
    job = TrainJob(
        point=GridPoint("image", 3, 16, 20, "medium", True),
        settings=ModelSettings(cascades=2),
        root=tmp_path,
        slices=tmp_path / "slices.parquet",
        masks=tmp_path / "masks.parquet",
        models_dir=tmp_path / "models",
        experiment_id="1",
        parent_run_id="parent",
        tags={"data_version": "v"},
        config_hash="abc",
        threads=2,
    )
    copy = pickle.loads(pickle.dumps(job))
    assert copy == job and isinstance(copy.point, GridPoint) and isinstance(copy.settings, ModelSettings)
