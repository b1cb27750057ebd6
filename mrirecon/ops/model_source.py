"""Where a trained grid point comes from: a local folder, an MLflow registered model (``models:/name@alias``,
``models:/name/version``), a run (``runs:/<id>/path`` or a bare run id). MLflow references are downloaded
(:func:`mlflow.artifacts.download_artifacts`) and the checkpoint folder, the one holding ``spec.json`` beside
``model.weights.h5`` (:mod:`mrirecon.models.checkpoint`), is found anywhere under what was downloaded, so the
artifact layout under a run's ``model/`` may nest it (e.g. inside an MLflow pyfunc model's artifacts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mrirecon.models.checkpoint import SPEC, WEIGHTS

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelSourceError(ValueError):
    """A model reference that cannot be resolved; the message names it and why."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved model reference.

    Attributes:
        reference: as given.
        folder: the checkpoint folder (``spec.json`` + ``model.weights.h5``).
        description: what it resolved to, e.g. ``"mrirecon-medium version 3 (run 0123...)"``.
        run_id: the MLflow run that trained it (``""`` for a local folder).
    """

    reference: str
    folder: Path
    description: str
    run_id: str = ""


def checkpoint_folder(root: Path, reference: str) -> Path:
    """The shallowest folder under ``root`` (itself included) holding ``spec.json`` and ``model.weights.h5``.

    Raises:
        ModelSourceError: if there is none.
    """
    found = sorted(
        (p.parent for p in Path(root).rglob(SPEC) if (p.parent / WEIGHTS).is_file()), key=lambda p: len(p.parts)
    )
    if not found:
        raise ModelSourceError(f"{reference}: no {SPEC} with {WEIGHTS} beside it under {root}")
    return found[0]


def resolve_model(reference: str, download_dir: Path, tracking_uri: str | None) -> ModelSource:
    """Resolve ``reference`` to a local checkpoint folder, downloading MLflow artifacts into ``download_dir``.

    Args:
        reference: a folder (e.g. ``models/image-L3-B16-E8-medium``), ``models:/<name>@<alias>``,
            ``models:/<name>/<version>``, ``runs:/<run id>/<path>`` or a 32-hex-digit MLflow run id.
        download_dir: an existing folder for downloads.
        tracking_uri: MLflow tracking (and registry) URI; needed for everything but a folder.

    Raises:
        ModelSourceError: unknown reference kind, no tracking URI, unknown registered model, version,
            alias or run, or no checkpoint in what was downloaded.
    """
    local = Path(reference).expanduser()
    if local.is_dir():
        return ModelSource(reference, checkpoint_folder(local, reference), f"folder {local.resolve()}")
    is_model, is_run = reference.startswith("models:/"), reference.startswith("runs:/") or RUN_ID.match(reference)
    if not (is_model or is_run):
        raise ModelSourceError(
            f"{reference}: not a folder, a models:/<name>@<alias> or models:/<name>/<version> URI, "
            "a runs:/ URI or an MLflow run id"
        )
    if not tracking_uri:
        raise ModelSourceError(f"{reference}: no MLflow tracking URI (set MLFLOW_TRACKING_URI or run in a project)")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if is_model:
        return _registered(client, reference, download_dir, tracking_uri)
    if reference.startswith("runs:/"):
        folder = _download(reference, download_dir, tracking_uri, artifact_uri=reference)
        return ModelSource(reference, checkpoint_folder(folder, reference), reference, reference.split("/")[1])
    return _run(client, reference, download_dir, tracking_uri)


def _registered(client: MlflowClient, reference: str, download_dir: Path, tracking_uri: str) -> ModelSource:
    match = MODEL_URI.match(reference)
    if not match:
        raise ModelSourceError(f"{reference}: expected models:/<name>@<alias> or models:/<name>/<version>")
    name = match["name"]
    try:
        if match["alias"]:
            version = client.get_model_version_by_alias(name, match["alias"])
        else:
            version = client.get_model_version(name, match["version"])
    except MlflowException as exc:
        known = [m.name for m in client.search_registered_models(max_results=50)]
        raise ModelSourceError(
            f"{reference}: no such registered model version or alias in {tracking_uri} "
            f"(registered models: {', '.join(known) or 'none'}): {exc.message.splitlines()[0]}"
        ) from exc
    description = f"{name} version {version.version}" + (f" (run {version.run_id})" if version.run_id else "")
    folder = _download(reference, download_dir, tracking_uri, artifact_uri=version.source or "")
    try:
        found = checkpoint_folder(folder, reference)
    except ModelSourceError:
        if not version.run_id:
            raise
        return _run(client, version.run_id, download_dir / "run", tracking_uri, reference)
    return ModelSource(reference, found, description, version.run_id or "")


def _run(
    client: MlflowClient, run_id: str, download_dir: Path, tracking_uri: str, reference: str | None = None
) -> ModelSource:
    """The checkpoint of a run: under its ``model/`` artifacts, else in a model logged by the run (MLflow 3)."""
    reference = reference or run_id
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ModelSourceError(f"{reference}: no MLflow run {run_id} in {tracking_uri}") from exc
    description = f"run {run_id} ({run.info.run_name})"
    try:
        folder = _download(reference, download_dir / "model", tracking_uri, run_id=run_id, artifact_path="model")
        return ModelSource(reference, checkpoint_folder(folder, reference), description, run_id)
    except ModelSourceError:
        logged = client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        for model in logged:
            folder = _download(
                reference, download_dir / model.model_id, tracking_uri, artifact_uri=model.artifact_location
            )
            try:
                return ModelSource(reference, checkpoint_folder(folder, reference), description, run_id)
            except ModelSourceError:
                continue
    raise ModelSourceError(f"{reference}: run {run_id} has no {SPEC} + {WEIGHTS} in its model artifacts")


def _download(reference: str, dest: Path, tracking_uri: str, **where: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                dst_path=str(dest), tracking_uri=tracking_uri, registry_uri=tracking_uri, **where
            )
        )
    except (MlflowException, OSError) as exc:
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        raise ModelSourceError(f"{reference}: cannot download its artifacts ({message.splitlines()[0]})") from exc
