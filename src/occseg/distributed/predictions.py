"""Sharded prediction: each rank predicts its share of a dataset's images, rank 0 merges the parts into the
file one process writes, byte for byte (same images, annotations, order, categories and ``image_root``).

A part is JSON text: the rank's predicted images with their global index in the dataset, each as the writer's
image record (file name relative to ``/``) and its annotation records (:mod:`occseg.data.writers`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from occseg.data.annotation import Dataset
from occseg.data.writers import KINS_FORMAT, KINS_VERSION, kins_json_object
from occseg.distributed.checkpoints import Checkpoints
from occseg.distributed.collectives import all_gather_bytes, first_error
from occseg.distributed.context import DistContext

_EMPTY_PART = json.dumps({"categories": None, "items": []})  # a shard without images
_ROOT = "/"  # parts name their images from the file system's root; the merge makes them relative again


def shard_dataset(dataset: Dataset, shard: int, n_shards: int) -> tuple[Dataset, list[int]]:
    """The dataset cut to the images of shard ``shard`` of ``n_shards`` (every ``n_shards``-th image from the
    ``shard``-th; same categories, source and format) and their indices in it."""
    idx = list(range(shard, len(dataset.images), n_shards))
    return replace(dataset, images=[dataset.images[i] for i in idx], warnings=list(dataset.warnings)), idx


def _global_indices(pred: Dataset, shard: Dataset, indices: list[int]) -> list[int]:
    """Where each predicted image sits in the whole dataset: predictions keep the order of the shard's images
    (images with nothing to predict are left out)."""
    out: list[int] = []
    j = 0
    for im in pred.images:
        while j < len(shard.images) and (shard.images[j].image_id, shard.images[j].path) != (im.image_id, im.path):
            j += 1
        if j == len(shard.images):
            raise RuntimeError(f"predicted image {im.image_id} ({im.path}) is not in this rank's shard")
        out.append(indices[j])
        j += 1
    return out


def prediction_part(pred: Dataset, shard: Dataset, indices: list[int]) -> str:
    """One rank's predictions as a part (JSON text) for :func:`merge_parts`."""
    obj = kins_json_object(pred, Path(_ROOT) / "part.json", image_root=_ROOT)
    anns = iter(obj["annotations"])
    items = [
        [g, rec, [next(anns) for _ in im.instances]]
        for g, rec, im in zip(_global_indices(pred, shard, indices), obj["images"], pred.images)
    ]
    return json.dumps({"categories": obj["categories"], "items": items})


def merge_parts(parts: list[str], json_path: str | Path) -> dict[str, Any]:
    """The JSON object one process writes to ``json_path`` (:func:`occseg.data.writers.kins_json_object`), from
    the ranks' parts."""
    loaded = [json.loads(p) for p in parts]
    named = [p for p in loaded if p["categories"] is not None]  # a rank without images names none
    categories = named[0]["categories"] if named else []
    for p in named[1:]:
        if p["categories"] != categories:
            raise RuntimeError("the ranks' predictions name different categories: cannot merge them")
    items = sorted((it for p in loaded for it in p["items"]), key=lambda it: it[0])
    json_dir = Path(os.path.abspath(json_path)).parent
    paths = [os.path.join(_ROOT, rec["file_name"]) for _, rec, _ in items]
    root = Path(os.path.commonpath([os.path.dirname(p) for p in paths])) if paths else json_dir
    images = [{**rec, "file_name": Path(os.path.relpath(p, root)).as_posix()} for (_, rec, _), p in zip(items, paths)]
    return {
        "info": {
            "format": KINS_FORMAT,
            "version": KINS_VERSION,
            "image_root": Path(os.path.relpath(root, json_dir)).as_posix(),
        },
        "images": images,
        "categories": categories,
        "annotations": [a for _, _, anns in items for a in anns],
    }


def predict_sharded(
    ctx: DistContext,
    dataset: Dataset,
    predict: Callable[[Dataset], Dataset],
    json_path: str | Path,
    *,
    shards: int | None = None,
    checkpoints: Checkpoints | None = None,
) -> dict[str, Any] | None:
    """Run ``predict`` on this rank's shards of ``dataset`` (``shards``: how many in all, default one per rank,
    dealt round robin); on rank 0, the merged JSON object for ``json_path`` (``None`` on the other ranks).

    Each shard's part is saved in ``checkpoints`` when it is done; when they may be reused (``--resume``), the
    parts an interrupted run saved (same key) are used instead of predicting their shards again. An error on any
    rank (a ``ValueError``: bad data, nothing to predict in a shard) stops every rank with the first rank's
    message."""
    n = shards or ctx.world_size
    parts: list[str] = []
    error = None
    try:
        for s in ctx.shard(n):
            parts.append(_shard_part(dataset, s, n, predict, checkpoints))
    except ValueError as exc:
        error = str(exc)
    error = first_error(ctx, error)
    if error is not None:
        raise ValueError(error)
    gathered = [p for b in all_gather_bytes(ctx, json.dumps(parts).encode("utf-8")) for p in json.loads(b)]
    return merge_parts(gathered, json_path) if ctx.is_main else None


def _shard_part(
    dataset: Dataset,
    s: int,
    n: int,
    predict: Callable[[Dataset], Dataset],
    checkpoints: Checkpoints | None,
) -> str:
    name = f"shard-{s:05d}-of-{n:05d}"
    part = checkpoints.load_text(name) if checkpoints is not None else None
    if part is None:
        shard, indices = shard_dataset(dataset, s, n)
        part = prediction_part(predict(shard), shard, indices) if shard.images else _EMPTY_PART
        if checkpoints is not None:
            checkpoints.save_text(name, part)
    return part
