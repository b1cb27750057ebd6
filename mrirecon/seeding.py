"""Seeded private random generators: every random draw in the project is keyed, never global."""

from __future__ import annotations

import hashlib

import numpy as np


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A private generator seeded by ``seed`` and a key (e.g. subject, slice, intensity).

    The key is hashed with SHA-256 so the stream does not depend on Python's hash
    randomisation; the global ``numpy.random`` state is not used.
    """
    digest = hashlib.sha256("|".join([str(seed), *map(str, key)]).encode()).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint32))
