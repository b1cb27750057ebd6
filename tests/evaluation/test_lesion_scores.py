"""mrirecon.evaluation.lesions (named apart from tests/mri/test_lesions.py: test basenames must be unique):
contrast recovery, detectability, missed share, hallucination scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import LESION_HEAD_SIZE as SIZE
from helpers import head, head_set

from mrirecon.config import EvaluateParams, LesionParams
from mrirecon.evaluation.lesions import (
    DETECTABILITY_CAP,
    false_edges,
    flat_metrics,
    lesion_set,
    lesion_table,
    score_lesions,
    smallest_detected,
    spill,
)
from mrirecon.evaluation.scoring import score_baselines
from mrirecon.mri.forward import measure, zero_filled_magnitude
from mrirecon.mri.subsample import cartesian_mask
from mrirecon.seeding import rng_for

PARAMS = LesionParams(slices=None, per_slice=4, diameters_px=[1.0, 3.0, 5.0], contrasts=[-0.4, 0.4], margin_px=2.0)


def zero_filled_check(data, params: LesionParams = PARAMS) -> dict:
    keep, inserted = lesion_set(data, params)
    without = zero_filled_magnitude(measure(data)[0])[keep]
    with_lesions = zero_filled_magnitude(measure(inserted.data)[0])
    return score_lesions(inserted, data.images[keep], with_lesions, without, params)


def test_fully_sampled_reconstruction_recovers_every_lesion_exactly():
    summary = zero_filled_check(head_set(3))
    assert summary["lesions"] >= 10  # up to 4 per slice: a lesion without room is left out
    assert summary["contrast_recovery"] == pytest.approx(1.0, abs=1e-5)
    for entry in summary["by_diameter"].values():
        assert entry["contrast_recovery"] == pytest.approx(1.0, abs=1e-5)
        assert entry["detectability"] == DETECTABILITY_CAP and entry["missed"] == 0.0
    assert summary["missed"] == 0.0 and summary["smallest_detected_px"] == 1.0
    assert summary["spill"] == pytest.approx(0.0, abs=1e-10) and summary["false_edges"] == 0.0


def test_zero_filled_contrast_recovery_falls_with_acceleration_on_a_fixed_slice():
    data = head_set(2)
    recovery = []
    for acceleration, centre in ((2.0, 0.16), (4.0, 0.08), (8.0, 0.04)):
        masks = np.stack([cartesian_mask(SIZE, acceleration, centre, rng_for(3, "mask", i)) for i in range(2)])
        recovery.append(zero_filled_check(replace(data, masks=masks))["contrast_recovery"])
    assert 1.0 > recovery[0] > recovery[1] > recovery[2] > 0.0
    # the zero-filled image of an R-fold undersampled point keeps about 1/R of its height
    assert recovery[2] < 0.4


def test_hand_built_contrast_recovery_and_detectability():
    data = head_set(1)
    keep, inserted = lesion_set(data, PARAMS)
    reference = data.images.astype(np.float64)
    checker = np.indices((SIZE, SIZE)).sum(axis=0) % 2 * 2 - 1.0  # +-1: standard deviation exactly 1 on any ring...
    without = reference + 0.01 * checker  # ...with as many + as - pixels (an even-sized symmetric ring)
    with_lesions = without + 0.5 * inserted.delta  # half the contrast kept
    table = lesion_table(inserted, reference, with_lesions, without)
    np.testing.assert_allclose(table["contrast_recovery"], 0.5, atol=1e-6)
    for lesion, d in zip(inserted.lesions, table["detectability"]):
        core = lesion.core((SIZE, SIZE))
        ring = lesion.ring((SIZE, SIZE)) & inserted.brain[0]
        sigma = (0.01 * checker[ring]).std()
        expected = abs(0.5 * inserted.delta[0][core].mean()) * np.sqrt(core.sum()) / sigma
        assert d == pytest.approx(min(expected, DETECTABILITY_CAP), rel=1e-6)
        assert sigma == pytest.approx(0.01, rel=0.05)
    inverted = lesion_table(inserted, reference, without - 0.5 * inserted.delta, without)
    assert (inverted["detectability"] < 0).all()  # an inverted lesion is not detected


def test_missed_share_and_smallest_reliably_detected_size():
    diameters = np.array([1, 1, 2, 2, 3, 3, 4, 4], float)
    detected = np.array([0, 0, 1, 0, 1, 1, 1, 1], bool)
    assert smallest_detected(diameters, detected, 0.9) == 3.0
    assert smallest_detected(diameters, detected, 0.5) == 2.0
    assert smallest_detected(diameters, ~detected, 0.9) is None  # the largest is missed
    data = head_set(2)
    keep, inserted = lesion_set(data, PARAMS)
    reference = data.images[keep]
    summary = score_lesions(inserted, reference, reference + inserted.delta, reference, PARAMS)
    assert summary["missed"] == 0.0 and summary["detectability"] == DETECTABILITY_CAP
    erased = score_lesions(inserted, reference, reference.copy(), reference, PARAMS)
    assert erased["contrast_recovery"] == 0.0 and erased["missed"] == 1.0 and erased["smallest_detected_px"] is None


def test_spill_is_lesion_energy_moved_outside_the_lesions():
    data = head_set(1)
    _, inserted = lesion_set(data, PARAMS)
    without = data.images.astype(np.float64)
    ghost = np.zeros_like(without)
    ghost[0, 0:2, 0:2] = 0.1  # a corner far from every lesion (lesions are inside the head)
    value = spill(inserted, without + inserted.delta + ghost, without)
    assert value == pytest.approx(0.04 / np.sum(inserted.delta**2), rel=1e-9)
    assert spill(inserted, without + inserted.delta, without) == 0.0


def test_false_edges_count_edges_the_reference_lacks():
    reference = np.where(head()[None] > 0.1, 0.6, 0.0)  # a flat head: its only edge is its outline
    brain = np.ones_like(reference, bool)
    assert false_edges(reference, reference, brain, 0.2) == 0.0
    invented = reference.copy()
    invented[0, 10:20, 28:36] += 1.0  # a bright block inside the head
    assert false_edges(reference, invented, brain, 0.2) > 0.05
    blurred = (reference + np.roll(reference, 1, axis=-1)) / 2  # losing edges is not adding them
    assert false_edges(reference, blurred, brain, 0.2) < false_edges(reference, invented, brain, 0.2)


def test_flat_metrics_and_the_baselines_lesion_check():
    data = head_set(2)
    baselines = score_baselines(
        data, None, EvaluateParams(cs=False, synthetic_phase_baselines=False, lesions=PARAMS), phase_seed=0
    )
    check = baselines.lesions
    assert check is not None and check.indices == [0, 1] and check.scores["cs"] is None
    summary = check.scores["zero_filled"]
    assert summary["contrast_recovery"] == pytest.approx(1.0, abs=1e-5)  # fully sampled masks
    flat = flat_metrics(summary)
    assert flat["lesion_contrast_recovery"] == pytest.approx(1.0, abs=1e-5)
    assert set(flat) >= {"lesion_missed", "lesion_spill", "lesion_false_edges", "lesion_smallest_detected_px"}
    assert {k for k in flat if k.startswith("lesion_cr_")} == {f"lesion_cr_{d}" for d in summary["by_diameter"]}
    with_lesions, without = check.shown["zero_filled"]
    np.testing.assert_allclose(with_lesions - without, check.lesions.delta[check.shown_slice], atol=1e-5)
    off = EvaluateParams(cs=False, synthetic_phase_baselines=False, lesions=LesionParams(enabled=False))
    assert score_baselines(data, None, off, phase_seed=0).lesions is None


def test_lesion_table_rows_from_a_report():
    from mrirecon.evaluation.tables import lesion_markdown, lesion_rows

    entry = {
        "contrast_recovery": 0.5,
        "detectability": 4.0,
        "missed": 0.25,
        "smallest_detected_px": 3.0,
        "spill": 0.1,
        "false_edges": 0.02,
        "by_diameter": {"5px": {"contrast_recovery": 0.8}, "1px": {"contrast_recovery": 0.2}},
    }
    report = {"conventions": {}, "high": {"acceleration": 8.0, "lesions": {"zero_filled": entry, "cs": None}}}
    rows = lesion_rows(report)
    assert len(rows) == 1 and rows[0]["method"] == "zero-filled" and rows[0]["CR smallest"] == 0.2
    named = {"high": {**report["high"], "best": {"name": "image-L3-B8-E12-high"}, "lesions": {"best": entry}}}
    assert [r["method"] for r in lesion_rows(named)] == ["best: image-L3-B8-E12-high"]
    table = lesion_markdown(report)
    assert "| high | 8 | zero-filled | 0.50 | 0.20 | 4.0 | 25% | 3 | 0.100 | 0.020 |" in table
    assert lesion_markdown({"conventions": {}, "high": {"acceleration": 8.0}}) == ""


def test_flat_columns_have_a_fixed_order():
    from mrirecon.evaluation.lesions import SUMMARY_KEYS, flat_columns

    a = {"by_diameter": {"5px": {}, "10px": {}}}
    b = {"by_diameter": {"2px": {}}}
    assert flat_columns([{}, a, b]) == [
        *(f"lesion_{k}" for k in SUMMARY_KEYS),
        *(f"lesion_cr_{d}px" for d in (2, 5, 10)),
    ]
    assert flat_columns([{}, {}]) == []
