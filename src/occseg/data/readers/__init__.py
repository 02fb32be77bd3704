"""Dataset readers: COCO, YOLO(-seg), KINS, COCOA and KITTI into one :class:`~occseg.data.annotation.Dataset`.

:func:`read_dataset` is the entry point; it detects the format from the path when ``fmt`` is not given:

* a ``.json`` file: top-level ``regions`` (or annotations holding ``regions``) → ``cocoa``; annotations with
  ``a_segm``/``i_segm``/``a_bbox``/``i_bbox`` or ``inmodal_seg``/``inmodal_bbox`` → ``kins``; else ``coco``;
* a folder: ``images/`` + ``labels/`` → ``yolo``; ``label_2/`` → ``kitti``; per-image ``*.json`` with
  ``regions`` → ``cocoa``; ``annotations/instances_*.json`` (or one ``annotations/*.json``) → ``coco`` / ``kins``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from occseg.data.annotation import Dataset
from occseg.data.readers.coco import read_coco, read_coco_object
from occseg.data.readers.cocoa import is_cocoa_collection, is_cocoa_image_file, read_cocoa, read_cocoa_object
from occseg.data.readers.common import DatasetFormatError, abs_path, load_json_object
from occseg.data.readers.kins import KINS_2019_KEYS, KINS_2020_KEYS, read_kins, read_kins_object
from occseg.data.readers.kitti import read_kitti
from occseg.data.readers.yolo import read_yolo

FORMATS: tuple[str, ...] = ("coco", "yolo", "kins", "cocoa", "kitti")

__all__ = [
    "FORMATS",
    "DatasetFormatError",
    "detect_format",
    "read_coco",
    "read_cocoa",
    "read_dataset",
    "read_kins",
    "read_kitti",
    "read_yolo",
]

_JSON_READERS: dict[str, Callable[..., Dataset]] = {
    "coco": read_coco_object,
    "kins": read_kins_object,
    "cocoa": read_cocoa_object,
}


def json_format(obj: Any) -> str:
    """The format of a loaded annotation JSON, by its keys (see the module docstring)."""
    if is_cocoa_image_file(obj) or is_cocoa_collection(obj):
        return "cocoa"
    anns = obj.get("annotations") if isinstance(obj, dict) else None
    if isinstance(anns, list):
        keys = KINS_2020_KEYS | KINS_2019_KEYS
        if any(isinstance(a, dict) and keys & a.keys() for a in anns):
            return "kins"
    if isinstance(obj, dict) and isinstance(obj.get("info"), dict) and obj["info"].get("format") == "occseg-kins":
        return "kins"
    return "coco"


def _annotation_json(folder: Path) -> Path | None:
    ann_dir = folder / "annotations"
    if not ann_dir.is_dir():
        return None
    candidates = sorted(ann_dir.glob("instances_*.json")) or sorted(ann_dir.glob("*.json"))
    if len(candidates) > 1:
        listed = ", ".join(c.name for c in candidates)
        raise DatasetFormatError(f"{ann_dir}: several annotation files ({listed}); pass one of them as the path")
    return candidates[0] if candidates else None


def _folder_format(folder: Path) -> tuple[str, Path]:
    """``(format, path to read)`` for a dataset folder."""
    if (folder / "labels").is_dir() and (folder / "images").is_dir():
        return "yolo", folder
    if (folder / "label_2").is_dir() or folder.name == "label_2":
        return "kitti", folder
    if "labels" in folder.parts and any(folder.glob("*.txt")):
        return "yolo", folder
    jsons = sorted(folder.glob("*.json"))
    if jsons:
        first = load_json_object(jsons[0], what="annotation JSON")
        if is_cocoa_image_file(first):
            return "cocoa", folder
        if len(jsons) == 1:
            return json_format(first), jsons[0]
    ann = _annotation_json(folder)
    if ann is not None:
        return json_format(load_json_object(ann, what="annotation JSON")), ann
    raise DatasetFormatError(
        f"{folder}: cannot tell the dataset format: expected images/ + labels/ (YOLO), label_2/ (KITTI), "
        "COCOA per-image *.json files, or annotations/instances_*.json (COCO); give the format (--format, fmt=)"
    )


def detect_format(path: str | Path) -> str:
    """The format :func:`read_dataset` would use for ``path`` (one of :data:`FORMATS`)."""
    p = abs_path(path)
    if p.is_dir():
        return _folder_format(p)[0]
    if not p.exists():
        raise FileNotFoundError(f"dataset path not found: {p}")
    if p.suffix.lower() != ".json":
        raise DatasetFormatError(f"{p}: cannot tell the format of a '{p.suffix}' file; give a .json or a folder")
    return json_format(load_json_object(p, what="annotation JSON"))


def read_dataset(path: str | Path, *, images: str | Path | None = None, fmt: str | None = None) -> Dataset:
    """Read annotations in any supported format into a :class:`Dataset` (boxes xyxy, masks lazy).

    ``images`` is the image folder where it cannot be found from the annotations; ``fmt`` (one of
    :data:`FORMATS`) skips detection and makes a file that is not that format an error naming the file.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    p = abs_path(path)
    if not p.exists():
        raise FileNotFoundError(f"dataset path not found: {p}")
    if p.is_dir():
        if fmt == "yolo":
            return read_yolo(p, images=images)
        if fmt == "kitti":
            return read_kitti(p, images=images)
        if fmt == "cocoa" and any(p.glob("*.json")):
            return read_cocoa(p, images=images)
        if fmt in ("coco", "kins"):
            ann = _annotation_json(p)
            if ann is None:
                raise DatasetFormatError(f"{p}: no annotations/instances_*.json in this folder for format {fmt!r}")
            p = ann
        else:
            detected, target = _folder_format(p)
            if fmt is not None and detected != fmt:
                raise DatasetFormatError(f"{p}: looks like a {detected!r} dataset, not {fmt!r}")
            if target.is_dir():
                return {"yolo": read_yolo, "kitti": read_kitti, "cocoa": read_cocoa}[detected](target, images=images)
            p = target
    if p.suffix.lower() != ".json":
        raise DatasetFormatError(f"{p}: annotation files must be .json (or give a YOLO/KITTI/COCOA folder)")
    obj = load_json_object(p, what="annotation JSON")
    use = fmt or json_format(obj)
    if use not in _JSON_READERS:
        raise DatasetFormatError(f"{p}: a single JSON file cannot be read as {use!r}; give the dataset folder")
    return _JSON_READERS[use](obj, p, images=images)
