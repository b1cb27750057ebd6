"""Typed access to ``params.yaml`` (pydantic), so a typo fails early with the key's name."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .masks import MASK_TYPES, Intensity


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataParams(_Strict):
    source: str = "sample"
    limit: int | None = Field(None, ge=1)  # ingest only the first N good volumes (quick runs)


class SliceParams(_Strict):
    per_subject: int = Field(5, ge=1)
    size: int = Field(128, ge=8)
    percentile: float = Field(99.5, gt=0, le=100)
    window_mm: tuple[float, float] = (20.0, 70.0)
    pixel_mm: float | None = Field(None, gt=0)  # resample slices to this in-plane pixel size (None = native)


class SplitParams(_Strict):
    fractions: dict[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}
    seed: int = 42

    @field_validator("fractions")
    @classmethod
    def _known_splits(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"train", "val", "test"}:
            raise ValueError(f"split.fractions needs exactly train, val, test; got {sorted(value)}")
        return value


class IntensityParams(_Strict):
    acceleration: float = Field(gt=1)
    center_fraction: float = Field(gt=0, lt=1)


class MaskParams(_Strict):
    seed: int = 1234
    type: str = "random"
    intensities: dict[str, IntensityParams]

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in MASK_TYPES:
            raise ValueError(f"masks.type must be one of {MASK_TYPES}, got {value!r}")
        return value

    def intensity_list(self) -> list[Intensity]:
        """The intensities in file order as :class:`~mrirecon.masks.Intensity`."""
        return [Intensity(name, p.acceleration, p.center_fraction) for name, p in self.intensities.items()]


class TrainParams(_Strict):
    """The grid (Cartesian product, expanded only in :func:`mrirecon.grid.expand_grid`) and
    settings shared by every grid point."""

    grid: dict[str, list]
    learning_rate: float = Field(1e-3, gt=0)
    base_filters: int = Field(16, ge=1)
    kspace_filters: int = Field(32, ge=1)
    data_consistency: bool = True
    early_stopping_patience: int | None = Field(None, ge=1)
    seed: int = 0
    experiment: str = "mrirecon"

    def settings(self) -> dict:
        """Fields of :class:`mrirecon.training.ModelSettings`."""
        return self.model_dump(exclude={"grid", "experiment"})


class EvaluateParams(_Strict):
    tolerance: float = Field(0.05, gt=0, lt=1)  # pct_correct: |est - ref| <= tolerance * max(ref slice)
    figure_slices: int = Field(3, ge=1)         # fixed test slices shown per grid point


class Params(BaseModel):
    """All of ``params.yaml``."""

    model_config = ConfigDict(extra="forbid")
    data: DataParams = DataParams()
    slices: SliceParams = SliceParams()
    split: SplitParams = SplitParams()
    masks: MaskParams
    train: TrainParams | None = None
    evaluate: EvaluateParams = EvaluateParams()


def load_params(path: str | Path) -> Params:
    """Read and validate a params file.

    Raises:
        FileNotFoundError: if the file is missing.
        pydantic.ValidationError: naming the offending key.
    """
    with open(path) as handle:
        raw = yaml.safe_load(handle) or {}
    return Params.model_validate(raw)
