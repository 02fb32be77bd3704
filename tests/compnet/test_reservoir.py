"""The per-class box sample (bottom-k of seeded keys): known answers, the cap, determinism, rank-independence."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from occseg.compnet.reservoir import bottom_k, box_key, merge_bottom_k, sample_box_samples, sample_per_group
from occseg.compnet.samples import BoxSample


def _samples(n: int, category: str = "person", images: int = 7) -> list[BoxSample]:
    return [
        BoxSample(image=Path(f"im{i % images}.jpg"), image_id=i % images, box=(i, 2.0 * i, i + 10.0, 2.0 * i + 40),
                  category=category)
        for i in range(n)
    ]  # fmt: skip


def test_box_key_is_a_seeded_64_bit_hash_of_the_parts():
    k = box_key(0, "a.jpg", "person", (1.0, 2.0, 3.0, 4.0))
    assert k == box_key(0, "a.jpg", "person", (1.0, 2.0, 3.0, 4.0))  # the same in every call (and process)
    assert 0 <= k < 2**64
    assert k != box_key(1, "a.jpg", "person", (1.0, 2.0, 3.0, 4.0))
    assert k != box_key(0, "a.jpg", "person", (1.0, 2.0, 3.0, 4.5))
    assert k != box_key(0, "b.jpg", "person", (1.0, 2.0, 3.0, 4.0))


def test_bottom_k_keeps_the_k_smallest_keys_ties_by_index():
    keyed = [(5, 0), (1, 1), (9, 2), (1, 3), (3, 4)]
    assert bottom_k(keyed, 3) == [(1, 1), (1, 3), (3, 4)]
    assert bottom_k(keyed, 10) == sorted(keyed)
    assert bottom_k(keyed, 0) == []
    with pytest.raises(ValueError, match="k must be >= 0"):
        bottom_k(keyed, -1)


@given(st.lists(st.integers(0, 2**64 - 1), max_size=60), st.integers(0, 70), st.integers(0, 60))
def test_merging_two_halves_samples_equals_the_whole_sample(keys, k, cut):
    keyed = [(key, i) for i, key in enumerate(keys)]
    halves = [bottom_k(keyed[:cut], k), bottom_k(keyed[cut:], k)]
    assert merge_bottom_k(halves, k) == bottom_k(keyed, k)
    # and dealt round robin to 3 ranks
    assert merge_bottom_k([bottom_k(keyed[r::3], k) for r in range(3)], k) == bottom_k(keyed, k)


def test_sample_per_group_caps_each_group_and_keeps_small_groups_whole():
    keys = [50, 10, 40, 30, 20, 7, 99]
    groups = ["a", "a", "a", "a", "a", "b", "b"]
    assert sample_per_group(keys, groups, 2) == [1, 4, 5, 6]  # a: keys 10 and 20; b: both (2 <= cap)
    assert sample_per_group(keys, groups, 5) == list(range(7))
    assert sample_per_group(keys, groups, 1) == [1, 5]


def test_sample_box_samples_below_the_cap_is_the_list_itself():
    s = _samples(20)
    assert sample_box_samples(s, 20, seed=0) == s


def test_sample_box_samples_respects_the_cap_per_class_in_the_datas_order():
    s = _samples(50) + _samples(6, "car")
    kept = sample_box_samples(s, 10, seed=0)
    assert sum(x.category == "person" for x in kept) == 10
    assert [x for x in kept if x.category == "car"] == s[50:]
    assert kept == [x for x in s if x in kept]  # the data's order
    assert sample_box_samples(kept, 10, seed=0) == kept  # sampling the sample again keeps it whole
    assert sample_box_samples(s, 10, seed=0) == kept  # deterministic
    assert sample_box_samples(s, 10, seed=1) != kept  # and seeded


def test_sample_box_samples_does_not_depend_on_the_order_or_the_image_ids():
    s = _samples(50)
    kept = sample_box_samples(s, 10, seed=3)
    shuffled = s[:]
    random.Random(0).shuffle(shuffled)
    assert set(sample_box_samples(shuffled, 10, seed=3)) == set(kept)
    shifted = [BoxSample(x.image, x.image_id + 1000, x.box, x.category) for x in s]  # a second source's ids
    assert [x.box for x in sample_box_samples(shifted, 10, seed=3)] == [x.box for x in kept]
    # each rank's share (round robin), sampled and merged, is the sample of the whole
    keyed = [(box_key(3, str(x.image), x.category, tuple(map(float, x.box))), i) for i, x in enumerate(s)]
    merged = merge_bottom_k([bottom_k(keyed[r::2], 10) for r in range(2)], 10)
    assert sorted(i for _, i in merged) == [s.index(x) for x in kept]
