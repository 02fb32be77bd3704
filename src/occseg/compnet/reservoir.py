"""Seeded, rank-independent samples of at most ``k`` training boxes per class (bottom-k sampling).

Each box gets a key: 64 bits of a keyed BLAKE2b hash of the seed and of what identifies the box (its image, its
class, its box). A class keeps the boxes with its ``k`` smallest keys, in the data's order. The keys depend on the
boxes alone, not on their position in a list nor on the process that reads them, so

- the sample is the same in any number of processes, and two halves' samples merge exactly into the whole's
  (:func:`merge_bottom_k`: the ``k`` smallest keys of the union of each half's ``k`` smallest);
- sampling an already sampled list again keeps it whole;
- a class with at most ``k`` boxes keeps every box, in order: training below the cap is unchanged bitwise.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence

from occseg.compnet.samples import BoxSample

#: a box's key and its index in the data's order
KeyedIndex = tuple[int, int]


def box_key(seed: int, *parts: object) -> int:
    """A 64-bit key of ``parts`` (their ``repr``s, so floats are exact) under ``seed``: the same in every process
    and Python run (no ``hash()`` salt)."""
    text = "\x1f".join(repr(p) for p in parts).encode()
    digest = hashlib.blake2b(text, digest_size=8, key=str(int(seed)).encode()).digest()
    return int.from_bytes(digest, "big")


def bottom_k(keyed: Iterable[KeyedIndex], k: int) -> list[KeyedIndex]:
    """The ``k`` smallest ``(key, index)`` pairs, smallest first (ties by index)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, not {k!r}")
    return heapq.nsmallest(k, keyed)


def merge_bottom_k(parts: Iterable[Sequence[KeyedIndex]], k: int) -> list[KeyedIndex]:
    """Merge the bottom-k samples of disjoint parts of the data: equal to :func:`bottom_k` of the whole."""
    return bottom_k((p for part in parts for p in part), k)


def sample_per_group(keys: Sequence[int], groups: Sequence[Hashable], k: int) -> list[int]:
    """Indices (ascending) of the items kept when each group keeps its ``k`` smallest keys; every index of a group
    with at most ``k`` items is kept."""
    by_group: dict[Hashable, list[KeyedIndex]] = defaultdict(list)
    for i, (key, group) in enumerate(zip(keys, groups, strict=True)):
        by_group[group].append((key, i))
    return sorted(i for members in by_group.values() for _, i in bottom_k(members, k))


def sample_box_samples(samples: Sequence[BoxSample], k: int, seed: int) -> list[BoxSample]:
    """At most ``k`` training boxes per class, in the data's order: each box keyed by its image file, class and
    box (not by its image id, which a multi-source training may shift)."""
    keys = [box_key(seed, str(s.image), s.category, tuple(float(v) for v in s.box)) for s in samples]
    return [samples[i] for i in sample_per_group(keys, [s.category for s in samples], k)]
