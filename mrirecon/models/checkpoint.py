"""Checkpoint I/O of one grid point: ``model.weights.h5`` beside ``spec.json``.

``spec.json`` holds what is needed to rebuild the network and to feed it: ``{"point": GridPoint fields,
"settings": ModelSettings fields, "size": slice side in pixels, "run_id": MLflow run id, "recipe":
Recipe fields}`` (written and read only here, as a :class:`ModelSpec`; ``recipe`` is absent from
checkpoints written before it existed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras

from mrirecon.config import ModelSettings
from mrirecon.data.storage import write_json
from mrirecon.grid import GridPoint
from mrirecon.models.recipe import Recipe
from mrirecon.models.training import build_model

WEIGHTS = "model.weights.h5"
SPEC = "spec.json"


@dataclass(frozen=True)
class ModelSpec:
    """What ``spec.json`` records about a trained grid point.

    Attributes:
        point: the grid point.
        settings: the settings it was trained with.
        size: slice side ``H = W`` in pixels the network was built for.
        run_id: id of its MLflow run (``""`` if none).
        recipe: preprocessing and simulation of its inputs (:class:`mrirecon.models.recipe.Recipe`;
            None for checkpoints written before recipes existed).
    """

    point: GridPoint
    settings: ModelSettings
    size: int
    run_id: str = ""
    recipe: Recipe | None = None

    def to_json(self) -> dict:
        """``{"point", "settings", "size", "run_id"[, "recipe"]}``, the content of ``spec.json``."""
        out = {
            "point": self.point.as_params(),
            "settings": self.settings.model_dump(),
            "size": int(self.size),
            "run_id": self.run_id,
        }
        if self.recipe is not None:
            out["recipe"] = self.recipe.model_dump(mode="json")
        return out

    @classmethod
    def from_json(cls, spec: dict) -> ModelSpec:
        """The inverse of :meth:`to_json`.

        Raises:
            KeyError, TypeError, pydantic.ValidationError: if a key is missing or a field is unknown or invalid.
        """
        recipe = Recipe.model_validate(spec["recipe"]) if spec.get("recipe") else None
        return cls(
            GridPoint(**spec["point"]),
            ModelSettings(**spec["settings"]),
            int(spec["size"]),
            spec.get("run_id") or "",
            recipe,
        )


def save_checkpoint(model: keras.Model, spec: ModelSpec, folder: Path) -> None:
    """Write ``model.weights.h5`` and ``spec.json`` into an existing ``folder``."""
    model.save_weights(folder / WEIGHTS)
    write_json(folder / SPEC, spec.to_json())


def read_spec(model_dir: Path) -> ModelSpec:
    """The :class:`ModelSpec` of a grid point's folder (``spec.json``)."""
    return ModelSpec.from_json(json.loads((Path(model_dir) / SPEC).read_text()))


def load_trained_model(model_dir: Path) -> tuple[keras.Model, ModelSpec]:
    """Rebuild a grid point's network from ``spec.json`` and load ``model.weights.h5``.

    Returns:
        ``(keras.Model, ModelSpec)``.

    Raises:
        FileNotFoundError: if the folder lacks the spec or the weights.
    """
    spec = read_spec(model_dir)
    model = build_model(spec.point, spec.size, spec.settings)
    model.load_weights(Path(model_dir) / WEIGHTS)
    return model, spec
