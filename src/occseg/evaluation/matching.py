"""Pair predictions with ground-truth objects by ``(image_id, id)``, refusing anything that would give a wrong number.

Rules (chosen so that no score is ever silently wrong):

* a predictions file that is not occseg's KINS-style format -> :class:`PredictionError` naming the file;
* predictions for image ids that are not in the GT, or for object ids that are not in their GT image ->
  :class:`PredictionError` listing the first few;
* the same ``(image_id, id)`` predicted twice -> :class:`PredictionError`;
* a predicted image whose width/height differ from the GT image, or a predicted mask whose size differs
  from its image -> :class:`PredictionError` naming the image (and object);
* a prediction that records the box it was made from (``given_box``, written by ``occseg predict``) where that
  box is neither its GT object's visible nor its amodal box (each clipped to the image) ->
  :class:`PredictionError`: the predictions were made for other data that happens to share image and object
  ids and sizes (two challenges made with other seeds, say);
* GT objects without a prediction -> a warning naming how many and a few ids; they are scored as a
  prediction with empty masks and no class (IoU 0, class wrong).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.geometry.boxes import clip_box
from occseg.io import read_json

Key = tuple[int, int]  # (image_id, annotation id)

#: How many offending ids an error or warning lists.
SHOW = 5

#: How far (image pixels) a prediction's recorded input box may lie from its GT object's box.
BOX_TOLERANCE = 0.05


class PredictionError(ValueError):
    """Predictions that cannot be scored against the ground truth (the message names what is wrong)."""


@dataclass
class Matching:
    """GT object key -> its prediction; the GT keys with no prediction; what was noticed on the way."""

    pairs: dict[Key, Instance]
    missing: list[Key]
    warnings: list[str] = field(default_factory=list)


def _image_name(image: AnnotatedImage) -> str:
    return f"image {image.image_id} ({image.file_name})"


def _first(keys: list[Any]) -> str:
    shown = ", ".join(str(k) for k in keys[:SHOW])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > SHOW else "")


def given_box_mismatch(pred: Instance, gt: Instance, gt_image: AnnotatedImage) -> str | None:
    """``None`` when the prediction records no input box (``extra["given_box"]``) or records one of its GT
    object's boxes (visible or amodal, clipped to the image, within :data:`BOX_TOLERANCE` px); otherwise a short
    description of the mismatch."""
    given = pred.extra.get("given_box")
    if given is None:
        return None
    try:
        g = [float(v) for v in given]
    except (TypeError, ValueError):
        return f"image {gt_image.image_id} id {gt.id}: unreadable given_box {given!r}"
    if len(g) != 4:
        return f"image {gt_image.image_id} id {gt.id}: unreadable given_box {given!r}"
    if gt.extra.get("given_box") == given:  # a predictions file scored against itself
        return None
    for box in (gt.box, gt.amodal_box):
        if box is not None:
            c = clip_box(box, gt_image.width, gt_image.height)
            if all(abs(a - b) <= BOX_TOLERANCE for a, b in zip(g, c)):
                return None
    shown = [round(v, 1) for v in g], [round(v, 1) for v in gt.box]
    return f"image {gt_image.image_id} id {gt.id}: made from {shown[0]}, GT box {shown[1]}"


def check_predictions_file(path: str | Path) -> None:
    """Raise :class:`PredictionError` (naming the file) unless ``path`` looks like occseg/KINS predictions.

    A predictions file is the KINS-2020-style JSON of :func:`occseg.data.writers.write_kins_json`: an
    object with ``images`` and ``annotations`` lists whose annotations have ``id``, ``image_id``,
    ``category_id`` and a predicted mask ``i_segm`` and/or ``a_segm``.
    """
    p = Path(path)
    try:
        obj = read_json(p, what="predictions file")
    except ValueError as exc:
        raise PredictionError(f"{exc} (expected an occseg/KINS-style predictions JSON)") from exc
    expect = "an occseg/KINS-style predictions JSON (see `occseg predict`)"
    if not isinstance(obj, dict):
        raise PredictionError(
            f"{p}: not a predictions file: the top level is a {type(obj).__name__}; expected {expect}"
        )
    for key in ("images", "annotations"):
        if not isinstance(obj.get(key), list):
            raise PredictionError(f"{p}: not a predictions file: no '{key}' list; expected {expect}")
    for i, ann in enumerate(obj["annotations"]):
        if not isinstance(ann, dict):
            raise PredictionError(f"{p}: not a predictions file: annotations[{i}] is not an object")
        absent = [k for k in ("id", "image_id", "category_id") if k not in ann]
        if absent:
            raise PredictionError(f"{p}: not a predictions file: annotations[{i}] has no {', '.join(absent)}")
        if "i_segm" not in ann and "a_segm" not in ann:
            hint = " (it has 'segmentation': a COCO/KINS-2019 file, not predictions)" if "segmentation" in ann else ""
            raise PredictionError(
                f"{p}: not a predictions file: annotations[{i}] (id {ann.get('id')}) has no predicted mask "
                f"'i_segm' or 'a_segm'{hint}; expected {expect}"
            )


def read_predictions(path: str | Path) -> Dataset:
    """Check and read a predictions file with the KINS reader; errors name the file."""
    from occseg.data.readers import read_dataset

    check_predictions_file(path)
    try:
        return read_dataset(path, fmt="kins")
    except (KeyError, TypeError) as exc:
        raise PredictionError(f"{path}: cannot read the predictions: {exc}") from exc


def match_predictions(
    gt: Dataset, pred: Dataset, *, keys: list[Key] | None = None, class_agnostic: bool = False
) -> Matching:
    """Pair every GT object (or only those in ``keys``) with the prediction of the same ``(image_id, id)``.
    ``class_agnostic``: the evaluation ignores classes (the warning about classes the GT lacks says so).

    Every prediction must belong to a GT image and GT object (checked over the whole GT, not only ``keys``,
    so predictions for objects that the evaluation filters leave out are accepted and ignored).
    """
    gt_objects = _gt_objects(gt)
    pairs = _pairs(gt, pred, gt_objects)
    wanted = keys if keys is not None else [(im.image_id, inst.id) for im in gt.images for inst in im.instances]
    missing = [k for k in wanted if k not in pairs]
    return Matching(pairs=pairs, missing=missing, warnings=_pairing_warnings(gt, pred, pairs, wanted, class_agnostic))


def _gt_objects(gt: Dataset) -> dict[Key, Instance]:
    """Every GT object by ``(image_id, id)``; two objects of one image with one id are an error."""
    gt_objects: dict[Key, Instance] = {}
    for im in gt.images:
        for inst in im.instances:
            key = (im.image_id, inst.id)
            if key in gt_objects:
                raise PredictionError(f"{gt.source}: {_image_name(im)} has two GT annotations with id {inst.id}")
            gt_objects[key] = inst
    return gt_objects


def _pairs(gt: Dataset, pred: Dataset, gt_objects: dict[Key, Instance]) -> dict[Key, Instance]:
    """The prediction of every predicted GT object; errors for predictions of other images or objects, repeated
    ones, masks of another size and predictions made from other boxes."""
    gt_images = {im.image_id: im for im in gt.images}
    unknown_images = [im.image_id for im in pred.images if im.image_id not in gt_images and im.instances]
    if unknown_images:
        raise PredictionError(
            f"{pred.source}: predictions for {len(unknown_images)} image id(s) not in the ground truth "
            f"{gt.source}: {_first(unknown_images)}"
        )
    pairs: dict[Key, Instance] = {}
    unknown_objects: list[str] = []
    duplicates: list[Key] = []
    other_boxes: list[str] = []
    for im in pred.images:
        if not im.instances:
            continue
        g = gt_images[im.image_id]
        if (im.width, im.height) != (g.width, g.height):
            raise PredictionError(
                f"{pred.source}: {_image_name(im)} is {im.width}x{im.height} in the predictions but "
                f"{g.width}x{g.height} in the ground truth ({g.file_name})"
            )
        for inst in im.instances:
            key = (im.image_id, inst.id)
            if key not in gt_objects:
                unknown_objects.append(f"image {im.image_id} id {inst.id}")
                continue
            if key in pairs:
                duplicates.append(key)
                continue
            for what, m in (("visible", inst.mask), ("amodal", inst.amodal_mask)):
                if m is not None and (m.height, m.width) != (g.height, g.width):
                    raise PredictionError(
                        f"{pred.source}: the predicted {what} mask of object {inst.id} in {_image_name(g)} is "
                        f"{m.width}x{m.height}, the image is {g.width}x{g.height}"
                    )
            mismatch = given_box_mismatch(inst, gt_objects[key], g)
            if mismatch is not None:
                other_boxes.append(mismatch)
            pairs[key] = inst
    if unknown_objects:
        raise PredictionError(
            f"{pred.source}: {len(unknown_objects)} prediction(s) for object ids not in the ground truth "
            f"{gt.source}: {_first(unknown_objects)}"
        )
    if duplicates:
        raise PredictionError(
            f"{pred.source}: {len(duplicates)} object(s) predicted more than once (image_id, id): {_first(duplicates)}"
        )
    if other_boxes:
        raise PredictionError(
            f"{pred.source}: {len(other_boxes)} prediction(s) were made from a box that is not their GT object's "
            f"in {gt.source} (were they predicted on other data with the same ids?): {_first(other_boxes)}"
        )
    return pairs


def _pairing_warnings(
    gt: Dataset, pred: Dataset, pairs: dict[Key, Instance], wanted: list[Key], class_agnostic: bool
) -> list[str]:
    """What the evaluation should say about the pairing: GT objects without a prediction, predictions without a
    visible mask, predicted classes the GT does not have."""
    missing = [k for k in wanted if k not in pairs]
    warnings: list[str] = []
    if missing:
        warnings.append(
            f"{len(missing)} of {len(wanted)} evaluated GT object(s) have no prediction and count as IoU 0 with a "
            f"wrong class; (image_id, id): {_first(missing)}"
        )
    scored = [pairs[k] for k in wanted if k in pairs]
    no_visible = [k for k in wanted if k in pairs and pairs[k].mask is None]
    if no_visible:
        warnings.append(
            f"{pred.source}: {len(no_visible)} prediction(s) have no visible mask ('i_segm') and score visible IoU 0 "
            f"(their amodal mask is scored); (image_id, id): {_first(no_visible)}"
        )
    gt_classes = set(gt.categories) | {inst.category for im in gt.images for inst in im.instances}
    foreign = sorted({inst.category for inst in scored} - gt_classes)
    if foreign:
        n = sum(inst.category in foreign for inst in scored)
        warnings.append(
            f"{pred.source}: {n} prediction(s) have classes the ground truth {gt.source} does not have "
            f"({', '.join(map(repr, foreign))}); "
            + ("their IoUs count all the same (class-agnostic)" if class_agnostic else "their class counts as wrong")
        )
    return warnings
