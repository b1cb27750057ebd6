"""Fresh training masks per epoch (``train.resample_masks``): each training slice gets a new mask in every
epoch, drawn like its mask in ``masks.parquet``, and that epoch's inputs are simulated from it through the same
forward model. What epoch ``e`` sees depends only on ``e`` (masks and order from generators keyed by the epoch),
so a shared training's checkpoints still equal separate trainings. Validation and test keep the fixed masks.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from typing import Any

import keras
import numpy as np

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet
from mrirecon.models.inference import model_inputs
from mrirecon.mri.subsample import cartesian_mask
from mrirecon.seeding import rng_for


def epoch_masks(data: SliceSet, seed: int, epoch: int) -> np.ndarray:
    """Fresh masks of a slice set for one training epoch (``train.resample_masks``).

    Each slice's mask is drawn like its mask in ``masks.parquet``
    (:func:`mrirecon.mri.subsample.cartesian_mask` with ``data.acceleration``,
    ``data.center_fraction`` and ``data.mask_type``: the same ``round(W * center_fraction)`` centre
    lines and about ``W / R`` lines in all), from a private generator
    ``rng_for(seed, "train-mask", subject, slice_index, intensity, epoch)``: reproducible, different
    per epoch, and the global random state is not touched.

    Args:
        data: slices with their mask parameters (:func:`mrirecon.data.slice_set.load_slice_set`).
        seed: the training seed (``train.seed``).
        epoch: 1-based epoch number, as in ``history.json`` and the checkpoints.

    Returns:
        bool ``(N, W)`` phase-encode masks, True = line sampled, in the order of ``data``.

    Raises:
        ValueError: if ``data`` lacks its centre fraction or mask type (a hand-built slice set).
    """
    if data.center_fraction is None or data.mask_type is None:
        raise ValueError(
            f"slice set of intensity {data.intensity!r} has no center_fraction/mask_type: "
            "resampling masks needs the parameters of masks.parquet (load it with load_slice_set)"
        )
    width = data.masks.shape[-1]
    return np.stack(
        [
            cartesian_mask(
                width,
                data.acceleration,
                data.center_fraction,
                rng_for(seed, "train-mask", subject, int(index), data.intensity, epoch),
                data.mask_type,
            )
            for subject, index in zip(data.subjects, data.slice_index, strict=True)
        ]
    )


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The order of ``count`` training slices in one epoch with resampled masks: a permutation
    (int ``(count,)``) from ``rng_for(seed, "train-order", epoch)``, so it depends only on the epoch."""
    return rng_for(seed, "train-order", epoch).permutation(count)


def _rows(x: Any, rows: np.ndarray | slice) -> Any:
    """``x[rows]`` for an array, or for each array of a dict of inputs."""
    return {k: v[rows] for k, v in x.items()} if isinstance(x, dict) else x[rows]


class ResampledMasks(keras.utils.PyDataset):
    """Training batches with a fresh mask for every slice in every epoch (``train.resample_masks``).

    The inputs and targets of epoch ``e`` are :func:`model_inputs` of the slices with
    :func:`epoch_masks` ``(data, settings.seed, e)`` (the same forward model: synthetic phase
    included), in the order :func:`epoch_order`; batch ``i`` holds rows ``i*B .. (i+1)*B - 1`` of
    that order (the last batch may be smaller), as Keras batches arrays. The epoch is set by
    :meth:`set_epoch` (a callback of :func:`train_point`, at the start of each epoch); a batch is
    a function of the epoch and its index alone, so a training's first ``e`` epochs are the same
    in a longer run. One epoch's arrays are kept at a time (as large as the training arrays).

    Args:
        kind: the model kind (``image`` / ``kspace``).
        data: the training slices with their mask parameters.
        settings: shared settings (seed, data consistency).
        synthetic_phase: scan the slices with a synthetic phase (the grid point's).
        batch_size: slices per batch ``B``.
    """

    def __init__(
        self, kind: str, data: SliceSet, settings: ModelSettings, synthetic_phase: bool, batch_size: int
    ) -> None:
        super().__init__()  # one worker, no multiprocessing: batches in order, from this process
        self.kind, self.data, self.settings = kind, data, settings
        self.synthetic_phase, self.batch_size = synthetic_phase, batch_size
        self.epoch = 1
        self._lock = threading.Lock()
        self._cached: tuple[int, Any, np.ndarray] | None = None

    @property
    def num_batches(self) -> int:
        """Batches per epoch, ``ceil(N / B)``."""
        return math.ceil(len(self.data) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of ``epoch`` (1-based) from now on."""
        self.epoch = epoch

    def epoch_callback(self) -> keras.callbacks.Callback:
        """The Keras callback that sets the epoch at the start of each epoch of ``model.fit``
        (Keras calls it before the epoch's first batch is drawn)."""
        return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: self.set_epoch(epoch + 1))

    def epoch_arrays(self, epoch: int) -> tuple[Any, np.ndarray]:
        """Inputs and targets of every slice in ``epoch`` (1-based), in that epoch's order
        (:func:`model_inputs` shapes, ``N`` rows)."""
        with self._lock:
            if self._cached is None or self._cached[0] != epoch:
                masks = epoch_masks(self.data, self.settings.seed, epoch)
                x, y = model_inputs(self.kind, replace(self.data, masks=masks), self.settings, self.synthetic_phase)
                order = epoch_order(len(self.data), self.settings.seed, epoch)
                self._cached = (epoch, _rows(x, order), y[order])
            return self._cached[1], self._cached[2]

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        """Batch ``index`` of the current epoch: ``(inputs, targets)`` as :func:`model_inputs`, ``<= B`` rows."""
        x, y = self.epoch_arrays(self.epoch)
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return _rows(x, rows), y[rows]
