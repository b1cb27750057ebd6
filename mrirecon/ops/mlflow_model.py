"""A trained grid point as an MLflow model (pyfunc flavour): what each child run logs under ``model/`` and
what the registry's versions point at.

Input/output contract of ``mlflow.pyfunc.load_model(...).predict(model_input)``:

- ``model_input``: a dict of float32 numpy arrays ``{"kspace": (N, H, W, 2), "mask": (N, W)}``. ``kspace``
  holds the real and imaginary parts of the undersampled k-space ``M F(x)``: ``x`` an axial slice prepared
  as the model's recipe says (``artifacts/checkpoint/spec.json: recipe``: normalised so the volume's
  ``percentile`` maps to 1, centre padded/cropped to ``H = W = size`` at ``pixel_mm``), ``F`` the centred
  orthonormal 2D FFT ``fftshift(fft2(ifftshift(x), norm="ortho"))`` over (H, W), ``M`` the mask applied to
  k-space columns (phase encode along W); ``mask`` is 1 for a measured column and 0 otherwise.
- output: float32 ``(N, H, W)`` magnitude reconstructions, in the units of the normalised slices.

The model folder (:func:`save_mlflow_model`) holds MLflow's ``MLmodel``, ``python_model.pkl``, the
requirements, ``input_example.json`` (one phantom slice, masked as the recipe says) and
``artifacts/checkpoint/`` = ``spec.json`` + ``model.weights.h5``, the same files as ``models/<point>/``,
read by :func:`mrirecon.models.checkpoint.load_trained_model`. Loading needs the ``mrirecon`` package
importable (the network code is the project's); the requirements pin mlflow, tensorflow, keras and numpy.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow.pyfunc
import numpy as np
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec

from mrirecon.models.checkpoint import SPEC, WEIGHTS, ModelSpec, read_spec
from mrirecon.mri.fft import fft2c
from mrirecon.mri.subsample import cartesian_mask
from mrirecon.seeding import rng_for

#: name of the checkpoint folder among the MLflow model's artifacts (``artifacts/checkpoint``)
CHECKPOINT = "checkpoint"
#: packages pinned in the model's requirements (no inference: slow and offline)
REQUIREMENTS = ("mlflow", "tensorflow-cpu", "keras", "numpy")


class ReconstructionModel(PythonModel):
    """pyfunc wrapper of one trained grid point (contract: see the module docstring)."""

    def load_context(self, context: PythonModelContext) -> None:
        from mrirecon.models.checkpoint import load_trained_model

        self.network, self.spec = load_trained_model(Path(context.artifacts[CHECKPOINT]))

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would read them as a schema
        """float32 ``(N, H, W)`` magnitudes from ``{"kspace": (N, H, W, 2), "mask": (N, W)}`` (float32).

        Raises:
            ValueError: if an input is missing or the shapes disagree (with each other or the network's size).
        """
        from mrirecon.models.inference import reconstruct_kspace

        if not isinstance(model_input, dict) or {"kspace", "mask"} - set(model_input):
            raise ValueError('model input must be a dict {"kspace": (N, H, W, 2), "mask": (N, W)} of float32 arrays')
        kspace = np.asarray(model_input["kspace"], dtype=np.float32)
        if kspace.ndim != 4 or kspace.shape[-1] != 2:
            raise ValueError(f"kspace must be (N, H, W, 2) real/imaginary parts, got shape {kspace.shape}")
        measured = kspace[..., 0] + 1j * kspace[..., 1]
        spec = self.spec
        return reconstruct_kspace(self.network, spec.point.model, measured, model_input["mask"], spec.settings)


def signature(size: int) -> ModelSignature:
    """Tensor signature of a network for ``size x size`` slices (see the module docstring)."""
    f32 = np.dtype(np.float32)
    inputs = Schema([TensorSpec(f32, (-1, size, size, 2), "kspace"), TensorSpec(f32, (-1, size), "mask")])
    return ModelSignature(inputs=inputs, outputs=Schema([TensorSpec(f32, (-1, size, size))]))


def input_example(spec: ModelSpec) -> dict[str, np.ndarray]:
    """One phantom slice (two nested ellipses, maximum 1) as the model input: its k-space masked with a mask
    of the recipe's type, acceleration and centre fraction (without a recipe: the centre eighth only)."""
    size = spec.size
    rows, cols = np.mgrid[:size, :size] / size - 0.5
    image = 0.5 * ((rows / 0.42) ** 2 + (cols / 0.35) ** 2 <= 1) + 0.5 * ((rows / 0.2) ** 2 + (cols / 0.15) ** 2 <= 1)
    recipe = spec.recipe
    if recipe is not None:
        rng = rng_for(recipe.mask_seed, "input_example", recipe.intensity)
        mask = cartesian_mask(size, recipe.acceleration, recipe.center_fraction, rng, recipe.mask_type)
    else:
        mask = np.zeros(size, bool)
        mask[size // 2 - max(1, size // 16) : size // 2 + max(1, size // 16)] = True
    kspace = fft2c(image) * mask[None, :]
    return {
        "kspace": np.stack([kspace.real, kspace.imag], axis=-1)[None].astype(np.float32),
        "mask": mask[None].astype(np.float32),
    }


def pip_requirements() -> list[str]:
    """Pinned versions of :data:`REQUIREMENTS` installed here (a package not installed is left out)."""
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def save_mlflow_model(checkpoint_dir: Path, path: Path) -> Path:
    """Write the MLflow model of the grid point in ``checkpoint_dir`` (``spec.json`` + ``model.weights.h5``)
    to the new folder ``path`` (see the module docstring); returns ``path``.

    Raises:
        FileNotFoundError: if ``checkpoint_dir`` lacks the spec or the weights.
    """
    checkpoint_dir = Path(checkpoint_dir)
    spec = read_spec(checkpoint_dir)
    recipe = spec.recipe.model_dump(mode="json") if spec.recipe else None
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / CHECKPOINT
        checkpoint.mkdir()
        for name in (SPEC, WEIGHTS):
            shutil.copy2(checkpoint_dir / name, checkpoint / name)
        mlflow.pyfunc.save_model(
            str(path),
            python_model=ReconstructionModel(),
            artifacts={CHECKPOINT: str(checkpoint)},
            signature=signature(spec.size),
            input_example=input_example(spec),
            pip_requirements=pip_requirements(),
            metadata={"grid_point": spec.point.name, "recipe": recipe},
        )
    return Path(path)


def log_mlflow_model(client: MlflowClient, run_id: str, checkpoint_dir: Path, artifact_path: str = "model") -> None:
    """Save the MLflow model of ``checkpoint_dir`` (:func:`save_mlflow_model`) in a temporary folder and upload
    it to run ``run_id`` under ``artifact_path`` (explicit run id, never the active run)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_mlflow_model(checkpoint_dir, Path(tmp) / "model")
        client.log_artifacts(run_id, str(folder), artifact_path)
