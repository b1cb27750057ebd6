"""What a Prefect flow run shows, on a real temporary Prefect API: the evaluation's artifacts on the top-level
(pipeline) run, and the training's per-epoch progress in the flow run's logs."""

from __future__ import annotations

from uuid import UUID

from helpers import tiny_slices_and_masks
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

from mrirecon.config import ModelSettings
from mrirecon.evaluation.report import PointResult, metrics_report
from mrirecon.grid import GridPoint, training_groups
from mrirecon.ops import tracking
from mrirecon.ops.worker import TrainJob
from tasks.artifacts import publish_artifacts_task
from tasks.train import train_group_task

ZF = {"medium": {"mse": 0.01, "nmse": 0.05, "psnr": 24.0, "ssim": 0.6, "pct_correct": 70.0}}
METRICS = {"mse": 0.005, "nmse": 0.02, "psnr": 27.0, "ssim": 0.8, "pct_correct": 80.0}
PARAMS = {"model": "image", "layers": 3, "batch_size": 16, "epochs": 8, "intensity": "medium"}


def _artifact_keys(flow_run_id: UUID) -> set[str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key for a in found}


def test_artifacts_belong_to_the_top_level_run(prefect_api, tmp_path):
    results = [PointResult("a", "run-a", PARAMS, 0.004, 4.0, METRICS, 12.0)]
    report = metrics_report({"medium": 4.0}, ZF, results)

    @flow(name="evaluate-standin")
    def evaluate() -> UUID | None:
        return publish_artifacts_task(report, results, tmp_path, "test")

    @flow(name="pipeline-standin")
    def pipeline() -> tuple[UUID, UUID | None]:
        state = evaluate(return_state=True)
        return state.state_details.flow_run_id, state.result()

    # as a subflow (mrirecon run): on the pipeline's run, none on the subflow's own run
    state = pipeline(return_state=True)
    subflow_run, target = state.result()
    assert target == state.state_details.flow_run_id != subflow_run
    assert _artifact_keys(target) == {"mrirecon-grid-test", "mrirecon-summary-test"}
    assert _artifact_keys(subflow_run) == set()
    # alone (dvc repro, mrirecon evaluate): on its own run
    alone = evaluate(return_state=True)
    assert alone.result() == alone.state_details.flow_run_id
    assert _artifact_keys(alone.state_details.flow_run_id) == {"mrirecon-grid-test", "mrirecon-summary-test"}


def test_per_epoch_progress_is_in_the_flow_run_logs(prefect_api, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    slices, masks = tiny_slices_and_masks(tmp_path)
    [group] = training_groups([GridPoint("kspace", 2, 2, 2, "medium")])
    experiment = tracking.ensure_experiment(tmp_path, "test")
    parent = tracking.start_run(tmp_path, experiment, "pipeline", {"role": "parent"})
    settings = ModelSettings(kspace_filters=4, seed=3)
    job = TrainJob(group, settings, tmp_path, slices, masks, tmp_path / "models", experiment, parent,
                   tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", threads=1)  # fmt: skip

    @flow(name="train-standin")
    def train() -> list[dict]:
        return train_group_task(job)

    state = train(return_state=True)
    assert state.result()[0]["epochs_run"] == 2
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    epochs = [log.message for log in logs if " epoch " in log.message]
    assert [m.split(" epoch ")[1].split(" ")[0] for m in sorted(epochs)] == ["1/2", "2/2"]
    assert all(m.startswith(f"[{group.name}] epoch ") and "val_loss=" in m for m in epochs)
    assert any(m.endswith(", published") for m in (log.message for log in logs))
