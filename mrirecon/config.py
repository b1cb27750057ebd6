"""Typed access to ``params.yaml`` (pydantic), so a typo or an inconsistent value fails at
the start of a run with the key's name and the rule it breaks.

Rules checked (besides types and unknown keys):

* ``data.strict``: bool; ``data.limit`` >= 1 or null.
* ``slices``: ``size`` >= 8, ``per_subject`` >= 1, ``window_mm`` with 0 <= lo < hi.
* ``split.fractions``: exactly ``train``, ``val``, ``test``, each in [0, 1], summing to 1
  (within 1e-6).
* ``masks.intensities``: at least one; ``acceleration`` >= 1 and finite;
  ``0 < center_fraction < 1`` and ``center_fraction <= 1 / acceleration``; with the
  slice width ``slices.size = W``: ``1 <= round(W * center_fraction) <= W / acceleration``
  (the rule of :func:`mrirecon.mri.subsample.cartesian_mask`).
* ``train.grid``: the rules of :func:`mrirecon.grid.validate_grid` (exactly the axes of
  :data:`mrirecon.grid.REQUIRED_AXES`, optionally ``synthetic_phase``, none empty, no
  duplicate values; models in :data:`mrirecon.grid.MODEL_KINDS`; ``layers``,
  ``batch_size``, ``epochs`` positive integers; for model ``kspace`` ``layers >= 2``); every
  ``intensity`` a name in ``masks.intensities``; for model ``image`` each ``layers`` value L
  needs ``slices.size`` divisible by ``2**(L-1)`` (:func:`mrirecon.models.unet.build_image_unet`)
  and a bottom level of at least :data:`MIN_UNET_BOTTOM` pixels.
* ``profile``: ``name`` (letters, digits, ``-``, ``_``); in a file named ``params-<name>.yaml`` it must be
  ``<name>`` (``params.yaml`` is the active copy of any profile, see ``mrirecon run --profile``).
* ``train`` settings shared by every grid point: :class:`ModelSettings` (defined once here;
  each point's ``spec.json: settings``).

The slice count against a volume's depth can only be checked per volume, at selection
time (:func:`mrirecon.data.slices.choose_axial_slices`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mrirecon.grid import axis_values, check_intensities, validate_grid
from mrirecon.mri.subsample import MASK_TYPES, Intensity, center_line_count

#: Smallest side (pixels) of the U-Net's bottom level, ``size / 2**(levels - 1)``: below
#: this the deepest 3x3 convolutions see mostly zero padding.
MIN_UNET_BOTTOM = 4


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and every bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileParams(_Strict):
    """Which profile a params file is, recorded as the ``profile`` tag of every MLflow run, and whether its
    runs register their best grid points in the MLflow model registry (and compete for ``champion``)."""

    name: str = Field("default", pattern=r"^[A-Za-z0-9_-]+$")
    register_models: bool = True


class DataParams(_Strict):
    source: str = "sample"
    limit: int | None = Field(None, ge=1)  # ingest only the first N good volumes (quick runs)
    strict: bool = False  # stop ingestion at the first rejected file instead of skipping it


class SliceParams(_Strict):
    per_subject: int = Field(5, ge=1)
    size: int = Field(128, ge=8)
    percentile: float = Field(99.5, gt=0, le=100)
    window_mm: tuple[float, float] = (20.0, 70.0)
    pixel_mm: float | None = Field(None, gt=0)  # resample slices to this in-plane pixel size (None = native)

    @field_validator("window_mm")
    @classmethod
    def _ordered_window(cls, value: tuple[float, float]) -> tuple[float, float]:
        lo, hi = value
        if not (0 <= lo < hi):
            raise ValueError(
                f"slices.window_mm must be [lo, hi] mm below the vertex with 0 <= lo < hi, got {list(value)}"
            )
        return value


class SplitParams(_Strict):
    fractions: dict[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}
    seed: int = 42

    @field_validator("fractions")
    @classmethod
    def _known_splits(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"train", "val", "test"}:
            raise ValueError(f"split.fractions needs exactly train, val, test; got {sorted(value)}")
        bad = {k: v for k, v in value.items() if not (0 <= v <= 1)}
        if bad:
            raise ValueError(f"split.fractions must each be between 0 and 1, got {bad}")
        total = sum(value.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.fractions must sum to 1, got {value} (sum {total:g})")
        return value


class MaskParams(_Strict):
    seed: int = 1234
    type: str = "random"
    intensities: dict[str, Intensity]  # name -> {acceleration, center_fraction}; the key is the name

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in MASK_TYPES:
            raise ValueError(f"masks.type must be one of {MASK_TYPES}, got {value!r}")
        return value

    @field_validator("intensities", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        """Each intensity is named by its key (``params.yaml`` gives no ``name``)."""
        if not isinstance(value, dict):
            return value
        named = {}
        for key, item in value.items():
            if isinstance(item, dict):
                if "name" in item:
                    raise ValueError(f"masks.intensities.{key}: no 'name' key, the intensity is named by its key")
                item = {"name": key, **item}
            named[key] = item
        return named

    @field_validator("intensities")
    @classmethod
    def _some_intensity(cls, value: dict[str, Intensity]) -> dict[str, Intensity]:
        if not value:
            raise ValueError(
                "masks.intensities is empty; give at least one, e.g. medium: {acceleration: 4, center_fraction: 0.08}"
            )
        return value

    def intensity_list(self) -> list[Intensity]:
        """The intensities in file order (:class:`~mrirecon.mri.subsample.Intensity`)."""
        return list(self.intensities.values())


class ModelSettings(BaseModel):
    """Settings shared by every grid point: ``params.yaml: train`` besides ``grid`` and ``experiment``
    (every default written here once), saved per point as ``spec.json: settings`` and logged as MLflow params.
    Field order is the order of ``spec.json`` and of the MLflow params."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(1e-3, gt=0)  # Adam step size
    base_filters: int = Field(16, ge=1)  # image U-Net: filters at the first level, doubled per level
    kspace_filters: int = Field(32, ge=1)  # k-space CNN: channels of the hidden 3x3 convolutions
    data_consistency: bool = True  # k-space CNN: put the measured lines back exactly
    early_stopping_patience: int | None = Field(None, ge=1)  # epochs without val_loss improvement; null = off
    seed: int = 0  # Keras seed (initial weights, shuffling), synthetic-phase, noise and resampled-mask seed
    image_data_consistency: bool = False  # image model: complex input + exact data consistency
    cascades: int = Field(1, ge=1, le=5)  # image model with data consistency: U-Net + DC blocks
    refine_filters: int = Field(0, ge=0)  # image model with DC: magnitude refinement CNN after the last DC (0 = none)
    # a fresh random mask per training slice and epoch (same mask function and intensity as masks.parquet,
    # seeded by seed, slice, intensity and epoch); validation and test keep the masks of masks.parquet
    resample_masks: bool = False


class TrainParams(ModelSettings):
    """``params.yaml: train``: the grid (rules in :func:`mrirecon.grid.validate_grid`, Cartesian product
    expanded only in :func:`mrirecon.grid.expand_grid`), the MLflow experiment, and the
    :class:`ModelSettings` shared by every grid point."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    grid: dict[str, list | dict[str, list]]
    experiment: str = "mrirecon"

    @field_validator("grid")
    @classmethod
    def _valid_grid(cls, grid: dict) -> dict:
        return validate_grid(grid)

    def settings(self) -> ModelSettings:
        """The :class:`ModelSettings` part of this section."""
        return ModelSettings.model_validate(self.model_dump(include=set(ModelSettings.model_fields)))


class LesionParams(_Strict):
    """Lesion-insertion and hallucination checks (:mod:`mrirecon.mri.lesions`, :mod:`mrirecon.evaluation.lesions`)."""

    enabled: bool = True
    slices: int | None = Field(24, ge=1)  # evenly spaced test slices with lesions (null = all)
    per_slice: int = Field(4, ge=1)  # lesions per slice
    diameters_px: list[float] = Field([1.0, 2.0, 3.0, 4.0, 5.0], min_length=1)  # x pixel size (2 mm for IXI)
    contrasts: list[float] = Field([-0.4, -0.2, 0.2, 0.4], min_length=1)  # relative to the local tissue mean
    edge_px: float = Field(1.0, ge=0)  # raised-cosine edge width
    ring_px: float = Field(3.0, gt=0)  # background ring around each lesion (detectability noise)
    brain_threshold: float = Field(0.1, gt=0, lt=1)  # brain mask: fraction of the slice maximum
    margin_px: float = Field(5.0, ge=0)  # lesion rings kept this far inside the head mask (past scalp and skull)
    detect_threshold: float = Field(3.0, gt=0)  # missed if detectability d' is below (Rose criterion)
    reliable_fraction: float = Field(0.9, gt=0, le=1)  # "reliably detected": at least this share of a size
    edge_threshold: float = Field(0.2, gt=0, lt=1)  # false edges: Sobel magnitude >= this x reference max
    seed: int = 0

    @field_validator("diameters_px")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if min(value) <= 0:
            raise ValueError(f"evaluate.lesions.diameters_px must be > 0, got {value}")
        return value

    @field_validator("contrasts")
    @classmethod
    def _above_minus_one(cls, value: list[float]) -> list[float]:
        if min(value) <= -1 or 0 in value:
            raise ValueError(f"evaluate.lesions.contrasts must be > -1 and non-zero, got {value}")
        return value


class EvaluateParams(_Strict):
    tolerance: float = Field(0.05, gt=0, lt=1)  # pct_correct: |est - ref| <= tolerance * max(ref slice)
    figure_slices: int = Field(3, ge=1)  # fixed test slices shown per grid point
    cs: bool = True  # compressed-sensing (L1-wavelet, FISTA) baseline
    cs_lambdas: list[float] = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]  # candidates, chosen on validation slices
    cs_iterations: int = Field(50, ge=1)
    cs_val_slices: int = Field(40, ge=1)  # validation slices used to choose lambda (evenly spaced)
    cs_wavelet: str = "haar"  # orthogonal wavelet of the L1 prior (PyWavelets name)
    cs_cycle_spin: bool = True  # random circular shifts per iteration (translation invariance)
    noise_fraction: float = Field(0.05, ge=0)  # robustness check: k-space noise std / k-space RMS
    overfit_gap_db: float = Field(1.0, gt=0)  # a grid point overfits if train PSNR - test PSNR exceeds this
    synthetic_phase_baselines: bool = True  # also score zero-filled and CS with synthetic phase
    gap_slices: int | None = Field(None, ge=1)  # training slices for the train-test gap (null = all)
    ci_seed: int = 0  # seed of the bootstrap over test subjects (95% confidence intervals)
    ci_resamples: int = Field(2000, ge=100)  # bootstrap resamples
    lesions: LesionParams = LesionParams()  # lesion-insertion and hallucination checks


class ComputeParams(_Strict):
    """Where grid points run (not tracked by DVC: it does not change results)."""

    workers: int = Field(1, ge=1)  # grid points trained at once, each in its own process
    ingest_workers: int = Field(2, ge=1)  # processes decoding volumes in parallel during ingestion
    dask_address: str | None = None  # tcp://host:port of an existing Dask scheduler (overrides workers)


class ServeParams(_Strict):
    """Schedule of ``mrirecon serve``."""

    cron: str = "0 2 * * *"

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"serve.cron must be a 5-field cron expression such as '0 2 * * *', got {value!r}")
        return value


def unet_size_problem(size: int, levels: int) -> str | None:
    """Why an image of side ``size`` cannot go through a U-Net of ``levels`` levels, or None.

    Args:
        size: image side in pixels.
        levels: U-Net levels (>= 1).

    Returns:
        None if ``size`` is divisible by ``2**(levels - 1)`` and the bottom level is at least
        :data:`MIN_UNET_BOTTOM` pixels wide; otherwise a sentence naming the rule.
    """
    factor = 2 ** (levels - 1)
    if size % factor:
        return (
            f"slices.size {size} is not divisible by 2**(layers-1) = {factor} for an image U-Net with layers={levels}"
        )
    if size // factor < MIN_UNET_BOTTOM:
        return (
            f"slices.size {size} is too small for an image U-Net with layers={levels}: its bottom level would be "
            f"{size // factor} pixels wide (at least {MIN_UNET_BOTTOM}, i.e. size >= {MIN_UNET_BOTTOM * factor})"
        )
    return None


class Params(BaseModel):
    """All of ``params.yaml``, with the rules that involve several sections."""

    model_config = ConfigDict(extra="forbid")
    profile: ProfileParams = ProfileParams()
    data: DataParams = DataParams()
    slices: SliceParams = SliceParams()
    split: SplitParams = SplitParams()
    masks: MaskParams
    train: TrainParams | None = None
    evaluate: EvaluateParams = EvaluateParams()
    compute: ComputeParams = ComputeParams()
    serve: ServeParams = ServeParams()

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        width = self.slices.size
        for name, p in self.masks.intensities.items():
            n_centre = center_line_count(width, p.center_fraction)
            if n_centre < 1:
                raise ValueError(
                    f"masks.intensities.{name}: center_fraction {p.center_fraction} keeps round({width} * "
                    f"{p.center_fraction}) = 0 centre lines of a {width}-pixel slice; use at least {0.5 / width:.4g}"
                )
            if n_centre > width / p.acceleration + 1e-9:
                raise ValueError(
                    f"masks.intensities.{name}: center_fraction {p.center_fraction} keeps {n_centre} centre lines, "
                    f"more than W/R = {width}/{p.acceleration:g} = {width / p.acceleration:.1f} lines"
                )
        if self.train is not None:
            grid = self.train.grid
            check_intensities(grid, self.masks.intensities)
            if "image" in grid["model"]:
                for levels in axis_values(grid, "layers", "image"):
                    problem = unet_size_problem(width, levels)
                    if problem:
                        raise ValueError(problem)
        return self


def _describe(error: ValidationError) -> str:
    """One line per problem: ``key.path: message``."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def load_params(path: str | Path) -> Params:
    """Read and validate a params file.

    Args:
        path: a ``params.yaml``-style file.

    Returns:
        the validated :class:`Params`.

    Raises:
        FileNotFoundError: if the file is missing.
        ParamsError: (a ``ValueError``) if the YAML cannot be parsed or a rule is broken;
            the message names the file and, per problem, the key and the rule.
    """
    with open(path) as handle:
        try:
            raw = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections (data, slices, ...), got {type(raw).__name__}")
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        count = exc.error_count()
        raise ParamsError(f"{path}: {count} invalid parameter{'s' if count > 1 else ''}:\n{_describe(exc)}") from exc
    stem = Path(path).stem
    if stem.startswith("params-") and params.profile.name != stem.removeprefix("params-"):
        raise ParamsError(f"{path}: profile.name is {params.profile.name!r}, expected {stem.removeprefix('params-')!r}")
    return params
