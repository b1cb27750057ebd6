"""MLflow model registry: the best grid point per intensity, and the ``champion`` alias."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.evaluation.report import intensity_blocks
from mrirecon.ops import tracking

CHAMPION = "champion"


def model_name(intensity: str) -> str:
    """Registered model name of an intensity, e.g. ``mrirecon-medium``."""
    return f"mrirecon-{intensity}"


@task(name="register-best-models", cache_policy=NO_CACHE)
def register_best_task(root: Path, report: dict) -> dict[str, dict]:
    """Register each intensity's best grid point (lowest validation MSE) as a model version.

    The version points at the run's ``model/`` artifacts, an MLflow pyfunc model
    (:mod:`mrirecon.ops.mlflow_model`: ``mlflow.pyfunc.load_model("models:/<name>@champion")``), and carries the
    validation MSE and test metrics as tags. It becomes ``champion`` if there is none yet or
    if its validation MSE is lower than the champion's (selection never uses test metrics).
    A run already registered under that name is not registered again.

    Returns:
        ``{intensity: {"name", "version", "champion": bool}}``.
    """
    client = tracking.client_for(root)
    logger = get_run_logger()
    out: dict[str, dict] = {}
    for condition, intensity, block in intensity_blocks(report):
        if not block.get("best"):
            continue
        best = block["best"]
        name = model_name(intensity) + ("" if condition == "magnitude" else "-synthetic-phase")
        if not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(
                name,
                description=f"Best mrirecon network at {intensity} (R={block['acceleration']:g}) by validation MSE",
            )
        existing = client.search_model_versions(f"name = '{name}' and run_id = '{best['run_id']}'")
        if existing:
            version = existing[0]
        else:
            run = client.get_run(best["run_id"])
            version = client.create_model_version(
                name,
                source=f"{run.info.artifact_uri}/model",
                run_id=best["run_id"],
                tags={
                    "val_mse": f"{best['val_mse']:.8g}",
                    "test_psnr": f"{best['psnr']:.4f}",
                    "test_ssim": f"{best['ssim']:.4f}",
                    "grid_point": best["name"],
                    "data_version": run.data.tags.get("data_version", ""),
                },
            )
        try:
            current = client.get_model_version_by_alias(name, CHAMPION)
            current_val = float(current.tags.get("val_mse", "inf"))
        except Exception:  # noqa: BLE001 - no champion yet
            current, current_val = None, float("inf")
        promote = current is None or (best["val_mse"] < current_val and current.version != version.version)
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version.version)
            logger.info("%s v%s is the new %s (val MSE %.5f)", name, version.version, CHAMPION, best["val_mse"])
        out[intensity] = {
            "name": name,
            "version": str(version.version),
            "champion": promote or (current is not None and current.version == version.version),
        }
    return out
