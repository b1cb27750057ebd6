"""Fresh training masks per epoch (``train.resample_masks``, mrirecon.models.training): the masks drawn,
the batches a training sees, and validation on the fixed masks (small synthetic slices, CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import SliceSet
from mrirecon.grid import GridPoint
from mrirecon.models import training
from mrirecon.models.training import ResampledMasks, epoch_masks, epoch_order, model_inputs, train_point
from mrirecon.mri.subsample import center_line_count


def _slices(n: int, width: int, seed: int, mask_type: str = "random", acceleration: float = 4.0) -> SliceSet:
    """``n`` random ``width x width`` slices of intensity ``medium`` (R = ``acceleration``, centre fraction
    0.125) with a fixed mask (the centre and every 4th line), as :func:`load_slice_set` returns them."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, width), bool)
    masks[:, ::4] = True
    cf = 0.125
    start = (width - center_line_count(width, cf) + 1) // 2
    masks[:, start : start + center_line_count(width, cf)] = True
    return SliceSet(
        rng.random((n, width, width)).astype(np.float32),
        masks,
        [f"IXI{i // 3:03d}-HH-0000" for i in range(n)],
        np.arange(n) % 3 + 40,
        acceleration,
        "medium",
        cf,
        mask_type,
    )


@pytest.mark.parametrize("mask_type", ["random", "equispaced"])
def test_epoch_masks_are_fresh_each_epoch_reproducible_and_keep_the_intensity(mask_type):
    data = _slices(200, 128, 0, mask_type)
    state = np.random.get_state()
    first, second = epoch_masks(data, 0, 1), epoch_masks(data, 0, 2)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # the global generator is untouched
    assert first.shape == second.shape == (200, 128) and first.dtype == bool
    np.testing.assert_array_equal(epoch_masks(data, 0, 1), first)  # same seed and epoch: same masks
    differs = np.any(first != second, axis=1)
    # random: every slice sees a new mask; equispaced: a new offset, which rounds to the old one now and then
    assert differs.all() if mask_type == "random" else differs.mean() > 0.5
    assert np.any(epoch_masks(data, 1, 1) != first, axis=1).mean() > 0.5  # another seed, other masks
    assert np.any(epoch_masks(SliceSet(**{**vars(data), "intensity": "high"}), 0, 1) != first, axis=1).mean() > 0.5
    assert np.any(first != data.masks, axis=1).all()  # not the fixed masks of masks.parquet
    centre = center_line_count(128, 0.125)  # 16 lines from column 56
    assert centre == 16
    for masks in (first, second):
        assert masks[:, 56 : 56 + centre].all()  # the fully sampled centre in every mask
        kept = masks.sum(axis=1)
        assert abs(kept.mean() - 128 / 4) < 1.0  # W/R = 32 lines on average
        if mask_type == "equispaced":
            assert np.all(np.abs(kept - 32) <= 3)


def test_epoch_masks_need_the_mask_parameters():
    data = _slices(2, 16, 0)
    bare = SliceSet(data.images, data.masks, data.subjects, data.slice_index, 4.0)
    with pytest.raises(ValueError, match="no center_fraction/mask_type"):
        epoch_masks(bare, 0, 1)
    with pytest.raises(ValueError, match="no center_fraction/mask_type"):
        train_point(GridPoint("kspace", 2, 2, 1, "medium"), bare, data, ModelSettings(resample_masks=True), verbose=0)


def test_a_training_sees_each_epochs_masks_in_that_epochs_order(monkeypatch):
    """In a real fit (k-space CNN, synthetic phase), the batches of epoch e carry exactly
    ``epoch_masks(e)`` in the order ``epoch_order(e)``, the inputs simulated from them."""
    train, val = _slices(6, 32, 0), _slices(2, 32, 1)
    settings = ModelSettings(kspace_filters=4, learning_rate=3e-3, seed=5, resample_masks=True)
    point = GridPoint("kspace", 2, 2, 3, "medium", True)
    seen: dict[tuple[int, int], dict] = {}
    getitem = ResampledMasks.__getitem__

    def spy(self, index):
        batch = getitem(self, index)
        seen[(self.epoch, index)] = batch[0]
        return batch

    monkeypatch.setattr(ResampledMasks, "__getitem__", spy)
    train_point(point, train, val, settings, verbose=0)
    assert sorted(seen) == [(e, i) for e in (1, 2, 3) for i in range(3)]  # 3 batches of 2 slices per epoch
    for epoch in (1, 2, 3):
        order = epoch_order(6, 5, epoch)
        masks = epoch_masks(train, 5, epoch)
        batches = [seen[(epoch, i)] for i in range(3)]
        np.testing.assert_array_equal(np.concatenate([b["mask"] for b in batches]), masks[order])
        resampled = SliceSet(**{**vars(train), "masks": masks})
        x, _ = model_inputs("kspace", resampled, settings, synthetic_phase=True)
        np.testing.assert_array_equal(np.concatenate([b["kspace"] for b in batches]), x["kspace"][order])
    assert not np.array_equal(epoch_order(6, 5, 1), epoch_order(6, 5, 2))  # reshuffled each epoch
    first, second = epoch_masks(train, 5, 1), epoch_masks(train, 5, 2)
    assert np.any(first != second, axis=1).all()  # every training slice sees a new mask in epoch 2


@pytest.mark.parametrize(
    "model,settings",
    [
        ("kspace", ModelSettings(kspace_filters=4, learning_rate=3e-3, seed=5, resample_masks=True)),
        (
            "image",
            ModelSettings(base_filters=4, learning_rate=3e-3, seed=5, image_data_consistency=True, resample_masks=True),
        ),  # fmt: skip
    ],
)
def test_validation_keeps_the_fixed_masks_every_epoch(model, settings):
    """``val_loss`` of each epoch is the loss on the validation slices with their fixed masks
    (and not on resampled ones); the validation slice set is left as it was."""
    train, val = _slices(6, 16, 0), _slices(4, 16, 1)
    fixed = val.masks.copy()
    x_val, y_val = model_inputs(model, val, settings)
    moved = SliceSet(**{**vars(val), "masks": epoch_masks(val, settings.seed, 1)})
    x_moved, y_moved = model_inputs(model, moved, settings)
    checked: list[tuple[float, float, float]] = []

    def check(result: training.TrainResult) -> None:
        logged = result.history["val_loss"][-1]
        on_fixed = float(result.model.evaluate(x_val, y_val, batch_size=2, verbose=0))
        on_moved = float(result.model.evaluate(x_moved, y_moved, batch_size=2, verbose=0))
        assert result.val_mse == pytest.approx(training.validation_mse(result.model, point, val, settings), rel=1e-6)
        checked.append((logged, on_fixed, on_moved))

    point = GridPoint(model, 2, 2, 3, "medium")
    train_point(point, train, val, settings, verbose=0, checkpoints=(1, 2, 3), on_checkpoint=check)
    assert len(checked) == 3
    for logged, on_fixed, on_moved in checked:
        assert logged == pytest.approx(on_fixed, rel=1e-5)
        assert abs(on_moved - on_fixed) > 1e-3 * on_fixed  # resampled validation masks would show
    np.testing.assert_array_equal(val.masks, fixed)
