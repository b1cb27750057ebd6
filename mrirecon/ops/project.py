"""Project layout (where each stage reads and writes) and offline-friendly tool settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_PROJECT = "MRIRECON_PROJECT"


def find_root(start: str | Path | None = None) -> Path:
    """The project root: ``$MRIRECON_PROJECT`` or the nearest folder above ``start`` (cwd)
    holding ``dvc.yaml`` and ``params.yaml``.

    Raises:
        FileNotFoundError: if no such folder exists.
    """
    if os.environ.get(ENV_PROJECT):
        return Path(os.environ[ENV_PROJECT]).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "params.yaml").is_file():
            return folder
    raise FileNotFoundError(f"no mrirecon project (dvc.yaml + params.yaml) at or above {here}")


@dataclass(frozen=True)
class Layout:
    """Paths of every stage's inputs and outputs under the project root."""

    root: Path

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def raw_sample(self) -> Path:
        return self.root / "data" / "raw" / "ixi-t1-2mm"

    @property
    def volumes(self) -> Path:
        return self.root / "data" / "interim" / "volumes.parquet"

    @property
    def rejected(self) -> Path:
        return self.root / "data" / "interim" / "rejected.csv"

    @property
    def slices(self) -> Path:
        return self.root / "data" / "processed" / "slices.parquet"

    @property
    def masks(self) -> Path:
        return self.root / "data" / "processed" / "masks.parquet"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"


def store_root(root: Path) -> Path:
    """Where the MLflow store lives: ``$DVC_ROOT`` when DVC runs a queued experiment in a temp
    copy (DVC points it at the parent repository), else the project root itself."""
    return Path(os.environ.get("DVC_ROOT") or root).resolve()


def configure_environment(root: Path) -> None:
    """Default settings that keep Prefect, MLflow and DVC local and quiet (no network).

    Only sets variables that are not already set: ``PREFECT_HOME`` inside the project,
    Prefect analytics off, ``DO_NOT_TRACK``, and MLflow's tracking URI to the project's
    SQLite file.
    """
    defaults = {
        "PREFECT_HOME": str(root / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "DO_NOT_TRACK": "true",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{store_root(root) / 'mlflow.db'}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
