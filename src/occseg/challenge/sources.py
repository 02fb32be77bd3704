"""Several source datasets as one, so a challenge can draw its whole objects from all of them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from occseg.data.annotation import Dataset


def merge_sources(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset holding the images of every source (in the order given), for :func:`generate_challenge`.

    Image ids must be unique across the sources (a challenge's split names its source images by id): a clash is a
    ``ValueError`` naming both files and the id. Category names keep the first source's id; when two names would
    share an id, every category is numbered afresh in order of appearance. The merged source is the first
    source's file (the challenge records it and refuses to overwrite it; every source image is checked too)."""
    if not datasets:
        raise ValueError("merge_sources: give at least one source dataset")
    owner: dict[int, Path] = {}
    images = []
    for ds in datasets:
        for im in ds.images:
            if im.image_id in owner:
                raise ValueError(
                    f"{ds.source}: image id {im.image_id} ({im.path.name}) is also in {owner[im.image_id]}: "
                    "the sources of one challenge need distinct image ids"
                )
            owner[im.image_id] = Path(ds.source)
            images.append(im)
    categories: list[str] = []
    ids: dict[str, int] = {}
    for ds in datasets:
        for name in ds.categories:
            if name not in ids:
                categories.append(name)
                ids[name] = ds.category_id(name)
    if len(set(ids.values())) < len(ids):
        ids = {name: k + 1 for k, name in enumerate(categories)}
    warnings = [w for ds in datasets for w in ds.warnings]
    return Dataset(images, categories, Path(datasets[0].source), datasets[0].format, warnings, ids)
