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


class Params(BaseModel):
    """All of ``params.yaml``. Sections of later stages are kept as plain dicts here."""

    model_config = ConfigDict(extra="allow")
    data: DataParams = DataParams()
    slices: SliceParams = SliceParams()
    split: SplitParams = SplitParams()
    masks: MaskParams


def load_params(path: str | Path) -> Params:
    """Read and validate a params file.

    Raises:
        FileNotFoundError: if the file is missing.
        pydantic.ValidationError: naming the offending key.
    """
    with open(path) as handle:
        raw = yaml.safe_load(handle) or {}
    return Params.model_validate(raw)
