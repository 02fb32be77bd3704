"""Writing a :class:`~occseg.data.annotation.Dataset` as a KINS-2020-style JSON (ground truth or predictions).

The file (``info.format == "occseg-kins"``) reads back with :func:`occseg.data.readers.read_dataset`
losslessly: boxes, masks (RLE), ids, categories, amodal fields, ``oco_id``/``ico_id`` and every key of
:attr:`Instance.extra` / :attr:`AnnotatedImage.extra`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.geometry.boxes import xyxy_to_xywh
from occseg.io import write_json

KINS_FORMAT = "occseg-kins"
KINS_VERSION = 1
#: Annotation keys the writer fills itself; an ``extra`` entry with one of these names is not written.
RESERVED_ANNOTATION_KEYS = frozenset(
    {"id", "image_id", "category_id", "iscrowd", "i_bbox", "i_segm", "i_area", "a_bbox", "a_segm", "a_area",
     "oco_id", "ico_id"}
)  # fmt: skip
RESERVED_IMAGE_KEYS = frozenset({"id", "file_name", "width", "height"})


def jsonable(value: Any, *, what: str = "value") -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths turned into JSON types; ``ValueError`` otherwise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, what=what) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v, what=f"{what}.{k}") for k, v in value.items()}
    raise ValueError(f"{what}: a {type(value).__name__} cannot be written to JSON")


def _category_table(dataset: Dataset) -> dict[str, int]:
    """Category name -> id: the dataset's ids, then new ids for names only the instances use."""
    table: dict[str, int] = {}
    for name in dataset.categories:
        cid = dataset.category_id(name)
        if name not in table and cid not in table.values():
            table[name] = cid
    next_id = max(table.values(), default=0) + 1
    names = list(dataset.categories) + [inst.category for im in dataset.images for inst in im.instances]
    for name in names:
        if name not in table:
            table[name] = next_id
            next_id += 1
    return table


def _box(box: Any) -> list[float]:
    return [float(v) for v in xyxy_to_xywh(box)]


def annotation_record(inst: Instance, image_id: int, category_id: int) -> dict[str, Any]:
    """One instance as a KINS-2020 annotation (xywh boxes, compressed RLE masks, extra keys verbatim)."""
    rec: dict[str, Any] = {
        "id": int(inst.id),
        "image_id": int(image_id),
        "category_id": int(category_id),
        "iscrowd": int(bool(inst.iscrowd)),
        "i_bbox": _box(inst.box),
    }
    if inst.mask is not None:
        rec["i_segm"] = inst.mask.to_json()
        rec["i_area"] = inst.mask.area()
    if inst.amodal_box is not None:
        rec["a_bbox"] = _box(inst.amodal_box)
    if inst.amodal_mask is not None:
        rec["a_segm"] = inst.amodal_mask.to_json()
        rec["a_area"] = inst.amodal_mask.area()
    if inst.cluster_id is not None:
        rec["oco_id"] = int(inst.cluster_id)
    if inst.order is not None:
        rec["ico_id"] = int(inst.order)
    where = f"image {image_id}, instance {inst.id}, extra"
    for key, value in inst.extra.items():
        if key not in RESERVED_ANNOTATION_KEYS:
            rec[str(key)] = jsonable(value, what=f"{where} {key!r}")
    return rec


def _image_root(dataset: Dataset, image_root: str | Path | None, json_dir: Path) -> Path:
    if image_root is not None:
        return Path(os.path.abspath(image_root))
    parents = [os.path.abspath(im.path.parent) for im in dataset.images]
    return Path(os.path.commonpath(parents)) if parents else json_dir


def image_record(image: AnnotatedImage, root: Path) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": int(image.image_id),
        "file_name": Path(os.path.relpath(os.path.abspath(image.path), root)).as_posix(),
        "width": int(image.width),
        "height": int(image.height),
    }
    for key, value in image.extra.items():
        if key not in RESERVED_IMAGE_KEYS:
            rec[str(key)] = jsonable(value, what=f"image {image.image_id} extra {key!r}")
    return rec


def kins_json_object(dataset: Dataset, json_path: str | Path, *, image_root: str | Path | None = None) -> dict:
    """The JSON object :func:`write_kins_json` writes (``json_path`` fixes the relative ``image_root``)."""
    json_dir = Path(os.path.abspath(json_path)).parent
    root = _image_root(dataset, image_root, json_dir)
    cats = _category_table(dataset)
    annotations = [
        annotation_record(inst, im.image_id, cats[inst.category]) for im in dataset.images for inst in im.instances
    ]
    return {
        "info": {
            "format": KINS_FORMAT,
            "version": KINS_VERSION,
            "image_root": Path(os.path.relpath(root, json_dir)).as_posix(),
        },
        "images": [image_record(im, root) for im in dataset.images],
        "categories": [{"id": cid, "name": name} for name, cid in sorted(cats.items(), key=lambda kv: kv[1])],
        "annotations": annotations,
    }


def write_kins_json(dataset: Dataset, path: str | Path, *, image_root: str | Path | None = None) -> None:
    """Write ``dataset`` as a KINS-2020-style JSON atomically.

    ``image_root`` is the folder the ``file_name`` entries are relative to (default: the deepest folder that
    holds every image); it is stored relative to the JSON's folder in ``info.image_root``.
    """
    write_json(path, kins_json_object(dataset, path, image_root=image_root))
