"""The experiment grid (``params.yaml: train.grid``): its axes, its rules, and its Cartesian product
model x layers x batch size x epochs x intensity (x synthetic phase).

The one place for each: the axes (:data:`GRID_AXES`, the fields of :class:`GridPoint`), the
rules a grid must follow (:func:`validate_grid`, applied by :mod:`mrirecon.config` when
``params.yaml`` is loaded), the expansion into points (:func:`expand_grid`) and the trainings
that produce them (:func:`training_groups`: points that differ only in ``epochs`` share one).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace


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

    @property
    def training_name(self) -> str:
        """:attr:`name` without its ``-E<epochs>`` part, e.g. ``image-L3-B16-medium``: the name of the
        training shared by the points that differ only in ``epochs`` (:func:`training_groups`)."""
        base = f"{self.model}-L{self.layers}-B{self.batch_size}-{self.intensity}"
        return base + ("-phase" if self.synthetic_phase else "")

    def as_params(self) -> dict:
        """The axes' values, ``{axis: value}`` in :data:`GRID_AXES` order (MLflow params, ``spec.json: point``)."""
        return asdict(self)


#: Every grid axis, in :class:`GridPoint` field order:
#: ``("model", "layers", "batch_size", "epochs", "intensity", "synthetic_phase")``.
GRID_AXES: tuple[str, ...] = tuple(f.name for f in fields(GridPoint))
#: Axes that may be left out of ``train.grid``; their default is a single value.
OPTIONAL_AXES: dict[str, list] = {"synthetic_phase": [False]}
#: Axes that ``train.grid`` must list: ``("model", "layers", "batch_size", "epochs", "intensity")``.
REQUIRED_AXES: tuple[str, ...] = tuple(axis for axis in GRID_AXES if axis not in OPTIONAL_AXES)
MODEL_KINDS = ("image", "kspace")
#: Fewest conv layers of the k-space CNN (:func:`mrirecon.models.kspace_cnn.build_kspace_cnn`).
MIN_KSPACE_LAYERS = 2


def _positive_ints(axis: str, values: list, minimum: int = 1) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"train.grid.{axis} values must be integers >= {minimum}, got {value!r}")


#: Axes whose values may be given per model kind, e.g. ``layers: {image: [2, 3, 4], kspace: [2, 3]}``.
PER_MODEL_AXES = ("layers", "batch_size", "epochs")


def axis_values(grid: dict, axis: str, model: str) -> list:
    """The values of ``axis`` for ``model``: the axis's list, or its entry for that model kind."""
    values = grid[axis]
    return list(values[model]) if isinstance(values, dict) else list(values)


def _check_values(axis: str, values: list) -> None:
    if not isinstance(values, list):
        raise ValueError(f"train.grid.{axis} must be a list of values, got {values!r}")
    if not values:
        raise ValueError(f"train.grid.{axis} is empty; give at least one value")
    duplicates = sorted({str(v) for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"train.grid.{axis} repeats {duplicates}; each grid point must be unique")


def validate_grid(grid: dict) -> dict:
    """Check a ``train.grid`` mapping (the only definition of its rules).

    Rules: exactly the axes of :data:`REQUIRED_AXES`, plus optionally those of :data:`OPTIONAL_AXES`
    (distinct true/false values); no axis empty, no repeated value; models in :data:`MODEL_KINDS`;
    ``layers``, ``batch_size``, ``epochs`` integers >= 1, each either one list for every model kind or a
    mapping ``{model kind: [values]}`` with exactly the kinds of ``model`` (:data:`PER_MODEL_AXES`); with
    model ``kspace``, ``layers >=`` :data:`MIN_KSPACE_LAYERS`. Rules involving other sections (intensity names:
    :func:`check_intensities`; image size vs U-Net depth) are checked by :mod:`mrirecon.config`.

    Args:
        grid: ``{axis: [values]}`` as written in ``params.yaml``.

    Returns:
        the grid, required axes first (in the given order), then the optional axes given.

    Raises:
        ValueError: naming the axis and the rule broken.
    """
    optional = {k: v for k, v in grid.items() if k in OPTIONAL_AXES}
    for axis, values in optional.items():
        if not values or any(not isinstance(v, bool) for v in values) or len(set(values)) != len(values):
            raise ValueError(f"train.grid.{axis} must be a list of distinct true/false values, got {values}")
    grid = {k: v for k, v in grid.items() if k not in OPTIONAL_AXES}
    if set(grid) != set(REQUIRED_AXES):
        missing, unknown = sorted(set(REQUIRED_AXES) - set(grid)), sorted(set(grid) - set(REQUIRED_AXES))
        raise ValueError(
            f"train.grid needs exactly the axes {list(REQUIRED_AXES)}; missing {missing}, unknown {unknown}"
        )
    for axis in REQUIRED_AXES:
        values = grid[axis]
        if isinstance(values, dict) and axis in PER_MODEL_AXES:
            if set(values) != set(map(str, grid["model"])):
                raise ValueError(
                    f"train.grid.{axis} per model kind needs exactly the kinds of train.grid.model "
                    f"{list(grid['model'])}, got {sorted(values)}"
                )
            for model, per_model in values.items():
                _check_values(f"{axis}.{model}", per_model)
        else:
            _check_values(axis, values)
    unknown_models = sorted(set(map(str, grid["model"])) - set(MODEL_KINDS))
    if unknown_models:
        raise ValueError(f"train.grid.model has unknown kinds {unknown_models}; expected {list(MODEL_KINDS)}")
    for axis in PER_MODEL_AXES:
        for model in grid["model"]:
            _positive_ints(axis, axis_values(grid, axis, model))
    if "kspace" in grid["model"] and min(axis_values(grid, "layers", "kspace")) < MIN_KSPACE_LAYERS:
        raise ValueError(
            f"train.grid.layers {grid['layers']}: model kspace needs layers >= {MIN_KSPACE_LAYERS} "
            "(number of 3x3 conv layers; a plain list is combined with every model, "
            "a mapping {image: [...], kspace: [...]} sets them per model)"
        )
    return {**grid, **optional}


def check_intensities(grid: dict, intensities: Iterable[str]) -> None:
    """Check that every ``train.grid.intensity`` is one of ``intensities`` (``masks.intensities`` names).

    Raises:
        ValueError: listing the unknown intensities and the known ones.
    """
    known = list(intensities)
    unknown = [i for i in grid["intensity"] if not isinstance(i, str) or i not in known]
    if unknown:
        raise ValueError(f"train.grid.intensity {unknown} not in masks.intensities {known}")


def expand_grid(grid: dict, intensities: Iterable[str]) -> list[GridPoint]:
    """All grid points, in a stable order (the only place the product is expanded).

    Args:
        grid: ``{axis: [values]}`` with the axes of :data:`REQUIRED_AXES` and optionally
            ``synthetic_phase`` (``[false]``, ``[true]`` or ``[false, true]``).
        intensities: intensity names that the masks step produced.

    Returns:
        list of :class:`GridPoint`, intensities outermost so results arrive per intensity.

    Raises:
        ValueError: if the grid breaks a rule of :func:`validate_grid` or names an intensity
            not in ``intensities`` (already refused when ``params.yaml`` is loaded).
    """
    grid = {**OPTIONAL_AXES, **validate_grid(grid)}
    check_intensities(grid, intensities)
    return [
        GridPoint(model, int(layers), int(batch), int(epochs), intensity, bool(phase))
        for phase, intensity, model in itertools.product(grid["synthetic_phase"], grid["intensity"], grid["model"])
        for layers, batch, epochs in itertools.product(
            axis_values(grid, "layers", model),
            axis_values(grid, "batch_size", model),
            axis_values(grid, "epochs", model),
        )
    ]


@dataclass(frozen=True)
class TrainingGroup:
    """Grid points produced by one training run: identical but for ``epochs``.

    The network is trained once to the largest epoch count (``points[-1].epochs``) and a
    checkpoint is taken at the end of each point's epoch count. With the same seed, data
    order and a constant learning rate, the checkpoint after ``e`` epochs is the network a
    separate ``e``-epoch training gives.

    Attributes:
        name: the training's name: :attr:`GridPoint.training_name` when points share a training,
            the point's own :attr:`GridPoint.name` when each point trains alone.
        points: the grid points, sorted by ``epochs`` (ascending, distinct), otherwise equal.

    Raises:
        ValueError: if ``points`` is empty, unsorted, repeats an epoch count or differs in another axis.
    """

    name: str
    points: tuple[GridPoint, ...]

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError(f"training {self.name!r} has no grid points")
        epochs = [p.epochs for p in self.points]
        if epochs != sorted(set(epochs)):
            raise ValueError(f"training {self.name!r}: epochs {epochs} must be distinct and ascending")
        if len({replace(p, epochs=0) for p in self.points}) != 1:
            raise ValueError(
                f"training {self.name!r}: points {[p.name for p in self.points]} differ in more than epochs"
            )

    @property
    def epochs(self) -> tuple[int, ...]:
        """The checkpoint epoch counts, ascending (1-based; one per point)."""
        return tuple(p.epochs for p in self.points)

    @property
    def final(self) -> GridPoint:
        """The point with the most epochs: what the training runs (``final.epochs`` epochs)."""
        return self.points[-1]

    def subset(self, points: Iterable[GridPoint]) -> TrainingGroup:
        """The same training restricted to ``points`` (a subset of :attr:`points`, e.g. the unfinished
        ones on resume; it then trains only to the largest of their epoch counts).

        Raises:
            ValueError: if a point is not in this group or none is given.
        """
        wanted = set(points)
        unknown = sorted(p.name for p in wanted - set(self.points))
        if unknown:
            raise ValueError(f"training {self.name!r} has no points {unknown}")
        return TrainingGroup(self.name, tuple(p for p in self.points if p in wanted))


def training_groups(points: Iterable[GridPoint], share_epochs: bool = True) -> list[TrainingGroup]:
    """The trainings that produce ``points``.

    Args:
        points: grid points (e.g. from :func:`expand_grid`), each at most once.
        share_epochs: group the points that differ only in ``epochs`` into one training (named
            :attr:`GridPoint.training_name`). ``False`` gives one training per point (named
            :attr:`GridPoint.name`); use it with early stopping, whose restored best weights
            are not the checkpoint of a longer training.

    Returns:
        the groups in the order of their first point in ``points`` (deterministic), each with its
        points sorted by ``epochs``.

    Raises:
        ValueError: if a point is repeated.
    """
    points = list(points)
    if len(set(points)) != len(points):
        raise ValueError("training_groups: a grid point is repeated")
    if not share_epochs:
        return [TrainingGroup(p.name, (p,)) for p in points]
    grouped: dict[GridPoint, list[GridPoint]] = {}
    for point in points:
        grouped.setdefault(replace(point, epochs=0), []).append(point)
    return [
        TrainingGroup(members[0].training_name, tuple(sorted(members, key=lambda p: p.epochs)))
        for members in grouped.values()
    ]
