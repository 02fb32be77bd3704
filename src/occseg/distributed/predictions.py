"""Sharded prediction: each rank predicts its share of a dataset's images, rank 0 merges the parts into the
file one process writes, byte for byte (same images, annotations, order, categories and ``image_root``).

A part is JSON text: the rank's predicted images with their global index in the dataset, each as the writer's
image record (file name relative to ``/``) and its annotation records (:mod:`occseg.data.writers`).
"""

from __future__ import annotations

import heapq
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from occseg.data.annotation import Dataset
from occseg.data.writers import KINS_FORMAT, KINS_VERSION, kins_json_object
from occseg.distributed.checkpoints import Checkpoints
from occseg.distributed.collectives import collect_files, first_error
from occseg.distributed.context import DistContext
from occseg.io import atomic_path

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


def prediction_part_object(pred: Dataset, shard: Dataset, indices: list[int]) -> dict[str, Any]:
    """One shard's predictions as a part: ``{"categories": ..., "items": [[index, image record, annotations],
    ...]}`` in index order."""
    obj = kins_json_object(pred, Path(_ROOT) / "part.json", image_root=_ROOT)
    anns = iter(obj["annotations"])
    items = [
        [g, rec, [next(anns) for _ in im.instances]]
        for g, rec, im in zip(_global_indices(pred, shard, indices), obj["images"], pred.images)
    ]
    return {"categories": obj["categories"], "items": items}


def prediction_part(pred: Dataset, shard: Dataset, indices: list[int]) -> str:
    """:func:`prediction_part_object` as JSON text (for :func:`merge_parts`, and the checkpoints)."""
    return json.dumps(prediction_part_object(pred, shard, indices))


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
) -> tuple[int, int] | None:
    """Run ``predict`` on this rank's shards of ``dataset`` (``shards``: how many in all, default one per rank,
    dealt round robin); rank 0 writes ``json_path`` (the file one process writes) and gets ``(images,
    annotations)`` written, the other ranks ``None``.

    Each shard's part goes to a file as soon as it is predicted (one shard's predictions are held at a time); the
    files reach rank 0 (:func:`~occseg.distributed.collectives.collect_files`), which merges them image by image
    (:func:`write_merged`). Each shard's part is saved in ``checkpoints`` when it is done; when they may be reused
    (``--resume``), the parts an interrupted run saved (same key) are used instead of predicting their shards
    again. An error on any rank (a ``ValueError``: bad data, nothing to predict in a shard) stops every rank with
    the first rank's message."""
    n = shards or ctx.world_size
    with tempfile.TemporaryDirectory(prefix=f".{Path(json_path).name}.parts-", dir=_parent(json_path)) as tmp:
        files: dict[int, Path] = {}
        error = None
        try:
            for s in ctx.shard(n):
                files[s] = write_part_file(_shard_part(dataset, s, n, predict, checkpoints), Path(tmp) / f"{s}.jsonl")
        except ValueError as exc:
            error = str(exc)
        error = first_error(ctx, error)
        if error is not None:
            raise ValueError(error)
        merged = _shard_files_on_main(ctx, n, files, Path(tmp))
        return write_merged(merged, json_path) if merged is not None else None


def _parent(json_path: str | Path) -> Path:
    parent = Path(os.path.abspath(json_path)).parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _shard_files_on_main(ctx: DistContext, n: int, files: dict[int, Path], tmp: Path) -> list[Path] | None:
    """Every shard's part file on rank 0, in shard order (sent by the ranks round by round: in round ``j`` rank
    ``r`` sends shard ``r + j * world_size``, or an empty file); ``None`` on the other ranks."""
    empty = tmp / "empty.jsonl"
    empty.touch()
    out: dict[int, Path] = dict(files) if ctx.is_main else {}
    for j in range(-(-n // ctx.world_size)):
        s = ctx.rank + j * ctx.world_size
        got = collect_files(ctx, files.get(s, empty), lambda r, j=j: tmp / f"{r + j * ctx.world_size}.jsonl")
        if got is not None:
            out.update({r + j * ctx.world_size: p for r, p in enumerate(got) if r + j * ctx.world_size < n})
    return [out[s] for s in range(n)] if ctx.is_main else None


def write_part_file(obj: dict[str, Any], path: Path) -> Path:
    """A part (:func:`prediction_part_object`) as a file of JSON lines: ``{"categories": ...}``, then one
    ``[index, image record, annotations]`` line per image, in index order."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"categories": obj["categories"]}) + "\n")
        for item in obj["items"]:
            fh.write(json.dumps(item) + "\n")
    return path


def _part_items(path: Path) -> Iterator[list[Any]]:
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            yield json.loads(line)


def _merged_items(files: list[Path]) -> Iterator[list[Any]]:
    """Every part file's ``[index, record, annotations]`` items in index order, read line by line."""
    return heapq.merge(*(_part_items(f) for f in files), key=lambda it: it[0])


def _categories(files: list[Path]) -> list[Any]:
    named = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            first = fh.readline()
        cats = json.loads(first)["categories"] if first else None
        if cats is not None:  # a shard without images names none
            named.append(cats)
    for cats in named[1:]:
        if cats != named[0]:
            raise RuntimeError("the ranks' predictions name different categories: cannot merge them")
    return named[0] if named else []


def write_merged(files: list[Path], json_path: str | Path) -> tuple[int, int]:
    """Write, atomically, the file one process writes to ``json_path`` (:func:`merge_parts`' object, as
    :func:`occseg.io.write_json` writes it) from the shards' part files, streaming: three passes over the files
    (the images' common folder, the images, the annotations), one image in memory at a time. Returns the
    numbers of images and annotations written."""
    categories = _categories(files)
    json_dir = Path(os.path.abspath(json_path)).parent
    root = None
    for _, rec, _ in _merged_items(files):
        d = os.path.dirname(os.path.join(_ROOT, rec["file_name"]))
        root = d if root is None else os.path.commonpath([root, d])
    root_path = Path(root) if root is not None else json_dir
    info = {
        "format": KINS_FORMAT,
        "version": KINS_VERSION,
        "image_root": Path(os.path.relpath(root_path, json_dir)).as_posix(),
    }
    n_images = n_anns = 0
    with atomic_path(json_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write('{"info": ' + json.dumps(info) + ', "images": [')
        for _, rec, _ in _merged_items(files):
            rel = Path(os.path.relpath(os.path.join(_ROOT, rec["file_name"]), root_path)).as_posix()
            fh.write((", " if n_images else "") + json.dumps({**rec, "file_name": rel}))
            n_images += 1
        fh.write('], "categories": ' + json.dumps(categories) + ', "annotations": [')
        for _, _, anns in _merged_items(files):
            for a in anns:
                fh.write((", " if n_anns else "") + json.dumps(a))
                n_anns += 1
        fh.write("]}\n")
    return n_images, n_anns


def _shard_part(
    dataset: Dataset,
    s: int,
    n: int,
    predict: Callable[[Dataset], Dataset],
    checkpoints: Checkpoints | None,
) -> dict[str, Any]:
    """Shard ``s``'s part: predicted, or read back from ``checkpoints`` (saved there when predicted)."""
    name = f"shard-{s:05d}-of-{n:05d}"
    saved = checkpoints.load_text(name) if checkpoints is not None else None
    if saved is not None:
        return json.loads(saved)
    shard, indices = shard_dataset(dataset, s, n)
    part = prediction_part_object(predict(shard), shard, indices) if shard.images else {"categories": None, "items": []}
    if checkpoints is not None:
        checkpoints.save_text(name, json.dumps(part))
    return part
