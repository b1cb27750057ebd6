"""MLflow model registry: the best grid point per intensity, and the ``champion`` alias."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mrirecon.config import ProfileParams
from mrirecon.evaluation.report import intensity_blocks
from mrirecon.ops import tracking

CHAMPION = "champion"


def model_name(intensity: str) -> str:
    """Registered model name of an intensity, e.g. ``mrirecon-medium``."""
    return f"mrirecon-{intensity}"


@task(name="register-best-models", cache_policy=NO_CACHE)
def register_best_task(root: Path, report: dict, profile: ProfileParams) -> dict[str, dict]:
    """Register each intensity's best grid point (lowest validation MSE) as a model version, if
    ``profile.register_models`` (smoke profiles such as ``quick`` register nothing).

    The version points at the run's ``model/`` artifacts, an MLflow pyfunc model
    (:mod:`mrirecon.ops.mlflow_model`: ``mlflow.pyfunc.load_model("models:/<name>@champion")``), and carries
    the validation MSE, test metrics, data version and profile as tags. It becomes ``champion`` if there
    is none yet, if the champion was selected on another data version (its validation MSE is on other
    subjects, so not comparable: the newest data wins), or if its validation MSE is lower than the
    champion's (selection never uses test metrics). A run already registered under that name is not
    registered again.

    Returns:
        ``{intensity: {"name", "version", "champion": bool}}``; empty when the profile registers nothing.
    """
    client = tracking.client_for(root)
    logger = get_run_logger()
    out: dict[str, dict] = {}
    if not profile.register_models:
        logger.info("profile %s: profile.register_models is false, no model versions registered", profile.name)
        return out
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
        if not existing:
            client.set_model_version_tag(name, version.version, "profile", profile.name)
        data_version = client.get_model_version(name, version.version).tags.get("data_version", "")
        try:
            current = client.get_model_version_by_alias(name, CHAMPION)
            current_val = float(current.tags.get("val_mse", "inf"))
        except Exception:  # noqa: BLE001 - no champion yet
            current, current_val = None, float("inf")
        comparable = current is not None and current.tags.get("data_version", "") == data_version
        promote = current is None or (
            current.version != version.version and (not comparable or best["val_mse"] < current_val)
        )
        if promote and current is not None and not comparable:
            logger.info("%s: champion v%s was chosen on other data; replaced", name, current.version)
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version.version)
            logger.info("%s v%s is the new %s (val MSE %.5f)", name, version.version, CHAMPION, best["val_mse"])
        out[intensity] = {
            "name": name,
            "version": str(version.version),
            "champion": promote or (current is not None and current.version == version.version),
        }
    return out
