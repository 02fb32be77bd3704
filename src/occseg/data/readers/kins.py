"""KINS amodal JSON: the 2020 keys and the 2019 keys, and occseg's own KINS-style files.

* 2020 (``update_{train,test}_2020.json`` and :func:`occseg.data.writers.write_kins_json`): ``i_bbox`` /
  ``i_segm`` = visible (inmodal), ``a_bbox`` / ``a_segm`` = amodal, ``oco_id`` = occlusion cluster,
  ``ico_id`` = order inside the cluster (0 = front).
* 2019 (``instances_{train,val}.json``): ``bbox`` / ``segmentation`` = amodal, ``inmodal_bbox`` /
  ``inmodal_seg`` = visible.

Boxes are xywh in the file, xyxy after reading. Segmentations may be polygons or RLE. Unknown annotation
keys go to :attr:`Instance.extra` and unknown image keys to :attr:`AnnotatedImage.extra`, so files written
by the writer read back losslessly. Category names come from the file's ``categories``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.readers.coco import JsonContext, build_json_dataset, instance_box
from occseg.data.readers.common import (
    DatasetFormatError,
    abs_path,
    as_flag,
    as_int,
    checked_polygons,
    extra_fields,
    load_json_object,
    make_mask,
)

#: (visible box, visible segm, amodal box, amodal segm, area keys) of each key style.
KEY_STYLES: dict[str, tuple[str, str, str, str, tuple[str, ...]]] = {
    "2020": ("i_bbox", "i_segm", "a_bbox", "a_segm", ("i_area", "a_area")),
    "2019": ("inmodal_bbox", "inmodal_seg", "bbox", "segmentation", ("area",)),
}
KINS_2020_KEYS = frozenset({"i_bbox", "i_segm", "a_bbox", "a_segm"})
KINS_2019_KEYS = frozenset({"inmodal_bbox", "inmodal_seg"})
_COMMON_KEYS = frozenset({"id", "image_id", "category_id", "iscrowd", "oco_id", "ico_id"})


def kins_key_style(annotations: list[Any]) -> str | None:
    """``"2020"``, ``"2019"`` or ``None`` (no annotation has KINS keys)."""
    for ann in annotations:
        if isinstance(ann, dict) and KINS_2020_KEYS & ann.keys():
            return "2020"
    for ann in annotations:
        if isinstance(ann, dict) and KINS_2019_KEYS & ann.keys():
            return "2019"
    return None


def read_kins(path: str | Path, *, images: str | Path | None = None) -> Dataset:
    """Read a KINS JSON (2020 or 2019 keys). Images: ``images``, else ``info.image_root``, else the standard layouts."""
    p = abs_path(path)
    return read_kins_object(load_json_object(p, what="KINS JSON"), p, images=images)


def read_kins_object(obj: dict[str, Any], p: Path, *, images: str | Path | None = None) -> Dataset:
    """:func:`read_kins` of an already loaded JSON object (``p`` names it in messages)."""
    anns = obj.get("annotations")
    style = kins_key_style(anns) if isinstance(anns, list) else None
    if style is None:
        is_ours = isinstance(obj.get("info"), dict) and obj["info"].get("format") == "occseg-kins"
        if isinstance(anns, list) and (not anns or is_ours):
            style = "2020"  # no annotations to tell from: read with the 2020 keys
        else:
            raise DatasetFormatError(
                f"{p}: not a KINS file: no annotation has the KINS-2020 keys (i_bbox, i_segm, a_bbox, a_segm) "
                "or the KINS-2019 keys (inmodal_bbox, inmodal_seg)"
                + ("" if isinstance(anns, list) else "; there is no 'annotations' list")
            )
    vis_box_key, vis_segm_key, am_box_key, am_segm_key, area_keys = KEY_STYLES[style]
    consumed = _COMMON_KEYS | {vis_box_key, vis_segm_key, am_box_key, am_segm_key, *area_keys}

    def convert(ann: dict[str, Any], image: AnnotatedImage, ctx: JsonContext, what: str) -> Instance | None:
        vis_segm = ann.get(vis_segm_key)
        am_segm = ann.get(am_segm_key)
        # the masks first: a broken mask is an error, not a skipped annotation
        mask = make_mask(vis_segm, image.height, image.width, f"{what} ({vis_segm_key})", ctx.rles)
        amodal_mask = make_mask(am_segm, image.height, image.width, f"{what} ({am_segm_key})", ctx.rles)
        for key, segm in ((vis_segm_key, vis_segm), (am_segm_key, am_segm)):
            if not checked_polygons(segm, image.height, image.width, f"{what} ({key})", ctx.warnings):
                return None
        box = instance_box(
            ann.get(vis_box_key), vis_segm, image, f"{what} (visible box)", ctx.warnings, segm_name=vis_segm_key
        )
        if box is None:
            return None
        amodal_box = None
        if ann.get(am_box_key) is not None or am_segm:
            amodal_box = instance_box(
                ann.get(am_box_key), am_segm, image, f"{what} (amodal box)", ctx.warnings, segm_name=am_segm_key
            )
            if amodal_box is None:
                return None
        oco, ico = ann.get("oco_id"), ann.get("ico_id")
        return Instance(
            id=as_int(ann["id"], what),
            category=ctx.category_names[as_int(ann["category_id"], what)],
            box=box,
            mask=mask,
            amodal_box=amodal_box,
            amodal_mask=amodal_mask,
            cluster_id=None if oco is None else as_int(oco, f"{what} oco_id"),
            order=None if ico is None else as_int(ico, f"{what} ico_id"),
            iscrowd=as_flag(ann.get("iscrowd", 0), f"{what} iscrowd"),
            extra=extra_fields(ann, consumed),
        )

    return build_json_dataset(obj, p, images=images, fmt="kins", convert=convert)
