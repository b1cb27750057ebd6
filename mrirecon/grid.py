"""The experiment grid: Cartesian product of model x layers x batch size x epochs x intensity."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

GRID_AXES = ("model", "layers", "batch_size", "epochs", "intensity")
#: Axes that may be left out of ``train.grid``; their default is a single value.
OPTIONAL_AXES = {"synthetic_phase": [False]}
MODEL_KINDS = ("image", "kspace")


@dataclass(frozen=True)
class GridPoint:
    """One training configuration.

    ``layers`` is the number of U-Net levels for ``model="image"`` and the number of 3x3
    convolution layers for ``model="kspace"``.
    """

    model: str
    layers: int
    batch_size: int
    epochs: int
    intensity: str
    synthetic_phase: bool = False

    @property
    def name(self) -> str:
        """Stable id used for folders and MLflow run names, e.g. ``image-L3-B16-E8-medium``
        (``-phase`` appended when trained on k-space with synthetic phase)."""
        base = f"{self.model}-L{self.layers}-B{self.batch_size}-E{self.epochs}-{self.intensity}"
        return base + ("-phase" if self.synthetic_phase else "")

    def as_params(self) -> dict:
        return asdict(self)


def expand_grid(grid: dict[str, list], intensities: list[str]) -> list[GridPoint]:
    """All grid points, in a stable order (the only place the product is expanded).

    Args:
        grid: ``{axis: [values]}`` with the keys of :data:`GRID_AXES` and optionally
            ``synthetic_phase`` (``[false]``, ``[true]`` or ``[false, true]``).
        intensities: intensity names that the masks step produced.

    Returns:
        list of :class:`GridPoint`, intensities outermost so results arrive per intensity.

    Raises:
        ValueError: on missing/unknown axes, an empty axis, an unknown model kind or an
            intensity the masks step did not produce.
    """
    grid = {**OPTIONAL_AXES, **grid}
    if set(grid) != set(GRID_AXES) | set(OPTIONAL_AXES):
        raise ValueError(f"train.grid needs exactly the axes {GRID_AXES} (optional: {tuple(OPTIONAL_AXES)}); got {sorted(grid)}")
    for axis in GRID_AXES:
        if not grid[axis]:
            raise ValueError(f"train.grid.{axis} is empty")
    unknown = set(grid["model"]) - set(MODEL_KINDS)
    if unknown:
        raise ValueError(f"train.grid.model has unknown kinds {sorted(unknown)}; expected {MODEL_KINDS}")
    missing = set(grid["intensity"]) - set(intensities)
    if missing:
        raise ValueError(f"train.grid.intensity {sorted(missing)} not among the masks' intensities {intensities}")
    return [
        GridPoint(model, int(layers), int(batch), int(epochs), intensity, bool(phase))
        for phase, intensity, model, layers, batch, epochs in itertools.product(
            grid["synthetic_phase"], grid["intensity"], grid["model"], grid["layers"], grid["batch_size"], grid["epochs"]
        )
    ]
