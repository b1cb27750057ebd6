"""The subject split: every subject, with all its slices, in exactly one of train/val/test."""

from __future__ import annotations

from mrirecon.seeding import rng_for


def split_subjects(subjects: list[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Assign each subject to one split (train/val/test), never splitting a subject.

    Subjects are sorted, shuffled with a private generator seeded by ``seed``, and cut in
    order of ``fractions`` (counts rounded, the last split takes the remainder; every split
    with a positive fraction gets at least one subject when there are enough subjects).

    Args:
        subjects: subject ids (duplicates ignored).
        fractions: e.g. ``{"train": 0.7, "val": 0.15, "test": 0.15}``, summing to 1.
        seed: shuffle seed.

    Returns:
        ``{subject: split}``.

    Raises:
        ValueError: if the fractions do not sum to 1 (within 1e-6) or any is negative.
    """
    if any(f < 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    unique = sorted(set(subjects))
    order = rng_for(seed, "split").permutation(len(unique))
    shuffled = [unique[i] for i in order]
    names = list(fractions)
    counts = [int(round(fractions[name] * len(unique))) for name in names[:-1]]
    positive = [name for name in names if fractions[name] > 0]
    if len(unique) >= len(positive):
        counts = [max(c, 1) if fractions[n] > 0 else c for c, n in zip(counts, names[:-1])]
    assignment: dict[str, str] = {}
    start = 0
    for name, count in zip(names[:-1], counts):
        for subject in shuffled[start : start + count]:
            assignment[subject] = name
        start += count
    for subject in shuffled[start:]:
        assignment[subject] = names[-1]
    return assignment
