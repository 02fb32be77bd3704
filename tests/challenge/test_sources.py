"""Several source datasets merged into one (src/occseg/challenge/sources.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from occseg.challenge.sources import merge_sources
from occseg.data.annotation import AnnotatedImage, Dataset


def _ds(name: str, ids: list[int], categories: list[str], category_ids: dict[str, int]) -> Dataset:
    images = [AnnotatedImage(i, Path(f"/{name}/{i}.jpg"), 10, 10) for i in ids]
    return Dataset(images, categories, Path(f"/{name}/ann.json"), "coco", category_ids=category_ids)


def test_merge_keeps_every_image_in_order_and_the_first_sources_ids():
    a = _ds("a", [1, 2], ["person", "car"], {"person": 1, "car": 3})
    b = _ds("b", [7], ["person", "dog"], {"person": 1, "dog": 18})
    merged = merge_sources([a, b])
    assert [im.image_id for im in merged.images] == [1, 2, 7]
    assert merged.categories == ["person", "car", "dog"]
    assert merged.category_ids == {"person": 1, "car": 3, "dog": 18}
    assert merged.source == Path("/a/ann.json")


def test_merge_renumbers_categories_whose_ids_clash():
    a = _ds("a", [1], ["person", "car"], {"person": 0, "car": 2})
    b = _ds("b", [2], ["person", "dog"], {"person": 1, "dog": 2})
    assert merge_sources([a, b]).category_ids == {"person": 1, "car": 2, "dog": 3}


def test_a_shared_image_id_is_refused_with_both_files():
    a, b = _ds("a", [1, 5], ["person"], {}), _ds("b", [5], ["person"], {})
    with pytest.raises(ValueError, match=r"/b/ann.json: image id 5 \(5.jpg\) is also in /a/ann.json"):
        merge_sources([a, b])
    with pytest.raises(ValueError, match="at least one"):
        merge_sources([])
