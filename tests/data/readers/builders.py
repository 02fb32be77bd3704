"""Small dataset files built on disk for the reader tests (COCO JSON, YOLO folders, PNGs)."""

from __future__ import annotations

import json
from pathlib import Path

from pycocotools import mask as mask_utils

from occseg.data.annotation import Dataset
from occseg.data.masks import LazyMask


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_png(path: Path, width: int, height: int) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (90, 120, 30)).save(path)
    return path


def coco_obj(annotations: list[dict], *, width: int = 40, height: int = 30) -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": width, "height": height, "license": 3},
                   {"id": 2, "file_name": "b.png", "width": width, "height": height}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": annotations,
    }  # fmt: skip


def ann(ann_id: int, bbox, *, image_id: int = 1, category_id: int = 3, **kw) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox, "iscrowd": 0, **kw}


def mask_iou(a: LazyMask, b: LazyMask) -> float:
    return float(mask_utils.iou([a.rle], [b.rle], [0])[0, 0])


def by_image(ds: Dataset) -> dict:
    return {im.image_id: im for im in ds.images}


def make_yolo(root: Path, lines: dict[str, str], *, size=(100, 50)) -> Path:
    for stem, text in lines.items():
        write_png(root / "images" / "train" / f"{stem}.png", *size)
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / f"{stem}.txt").write_text(text)
    return root
