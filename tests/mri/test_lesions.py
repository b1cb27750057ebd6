"""mrirecon.mri.lesions: synthetic lesions inside the brain, smooth-edged, seeded per subject and slice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import LESION_HEAD_SIZE as SIZE
from helpers import head, head_set

from mrirecon.mri.lesions import brain_mask, insert_lesions, lesion_profile

ARGS = {
    "diameters_px": [1.0, 3.0, 5.0],
    "contrasts": [-0.4, 0.4],
    "per_slice": 4,
    "edge_px": 1.0,
    "ring_px": 3.0,
    "brain_threshold": 0.1,
    "margin_px": 2.0,
    "seed": 7,
}


def test_profile_is_a_raised_cosine_disc():
    r = np.array([0.0, 1.0, 1.5, 2.0, 2.5, 3.0])
    # d = 4, e = 1: flat to r = 1.5, half at r = 2, zero from r = 2.5
    np.testing.assert_allclose(lesion_profile(r, 4.0, 1.0), [1, 1, 1, 0.5, 0, 0], atol=1e-12)
    np.testing.assert_array_equal(lesion_profile(r, 4.0, 0.0), [1, 1, 1, 1, 0, 0])


def test_brain_mask_is_the_filled_ellipse():
    image = head()
    mask = brain_mask(image, 0.1)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    ellipse = ((rows - 32) / 26) ** 2 + ((cols - 32) / 20) ** 2 <= 1
    assert mask[30:34, 30:34].all()  # the dark hole is filled
    assert (mask == ellipse).mean() > 0.99
    assert not brain_mask(np.zeros((8, 8)), 0.1).any()


def test_lesions_stay_inside_the_brain_with_their_rings_and_do_not_overlap():
    data = head_set()
    inserted = insert_lesions(data, **ARGS)
    assert len(inserted.lesions) == 3 * ARGS["per_slice"]
    shape = (SIZE, SIZE)
    footprint = np.zeros((3, SIZE, SIZE), int)
    for lesion in inserted.lesions:
        reach = lesion.distance(shape) <= lesion.outer_radius + 1 + lesion.ring_px + ARGS["margin_px"]
        assert inserted.brain[lesion.slice][reach].all()  # lesion, ring and margin inside the brain
        footprint[lesion.slice] += lesion.distance(shape) <= lesion.outer_radius + 1 + lesion.ring_px
    assert footprint.max() == 1  # rings do not overlap
    assert (inserted.delta[~inserted.brain] == 0).all()  # nothing changes outside the brain
    # the change is the lesions' amplitude times their profile, bright and dark
    expected = np.zeros_like(inserted.delta)
    for lesion in inserted.lesions:
        expected[lesion.slice] += lesion.amplitude * lesion.profile(shape)
        assert np.sign(lesion.amplitude) == np.sign(lesion.contrast)
    np.testing.assert_allclose(inserted.delta, expected, atol=1e-6)
    np.testing.assert_array_equal(inserted.data.masks, data.masks)
    assert inserted.data.subjects == data.subjects


def test_contrast_is_relative_to_the_local_tissue():
    data = replace(head_set(1), images=np.where(head()[None] > 0.1, 0.6, 0.0).astype(np.float32))
    inserted = insert_lesions(data, **{**ARGS, "diameters_px": [3.0], "contrasts": [0.25]})
    for lesion in inserted.lesions:  # flat tissue 0.6: amplitude 0.25 x 0.6 at the centre
        assert lesion.amplitude == pytest.approx(0.15)
        assert inserted.data.images[0, lesion.row, lesion.col] == pytest.approx(0.75, abs=1e-6)


def test_same_seed_same_lesions_and_other_slices_do_not_change_them():
    data = head_set(3)
    first, again = insert_lesions(data, **ARGS), insert_lesions(data, **ARGS)
    assert first.lesions == again.lesions
    np.testing.assert_array_equal(first.data.images, again.data.images)
    other = insert_lesions(data, **{**ARGS, "seed": 8})
    assert other.lesions != first.lesions
    # dropping a subject leaves the lesions of the others unchanged (keyed by subject and slice)
    fewer = replace(
        data, images=data.images[1:], masks=data.masks[1:], subjects=data.subjects[1:], slice_index=data.slice_index[1:]
    )
    kept = [replace(lesion, slice=lesion.slice - 1) for lesion in first.lesions if lesion.slice > 0]
    assert insert_lesions(fewer, **ARGS).lesions == kept


def test_bad_lesion_settings_are_refused():
    with pytest.raises(ValueError, match="contrasts > -1"):
        insert_lesions(head_set(1), **{**ARGS, "contrasts": [-1.0]})
    with pytest.raises(ValueError, match="per_slice"):
        insert_lesions(head_set(1), **{**ARGS, "per_slice": 0})
