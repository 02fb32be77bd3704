"""Mask baselines that need no model: fill the given box, or the ellipse inscribed in it.

Each GT object (but the unknown occluders, ``extra["unknown"]``) gets one prediction with the GT ``id``,
``image_id`` and class (score 1.0); the same mask is its visible and its amodal mask (so it predicts no
occluded part). ``boxes="auto"`` uses the object's amodal box where the data has one (the paper's protocol
gives models GT amodal boxes) and its visible box otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from occseg.choices import BoxChoice, choices
from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import LazyMask
from occseg.geometry.boxes import Box, box_to_pixel_mask, clip_box, ellipse_mask

BOX_CHOICES: tuple[str, ...] = choices(BoxChoice)

MaskFn = Callable[[Box, int, int], np.ndarray]


def input_box(inst: Instance, image: AnnotatedImage, boxes: str = "auto") -> Box:
    """The box a model is given for ``inst``: its amodal box (``auto``: where present) or its visible box."""
    if boxes not in BOX_CHOICES:
        raise ValueError(f"boxes must be one of {', '.join(BOX_CHOICES)}, got {boxes!r}")
    if boxes == "visible" or (boxes == "auto" and inst.amodal_box is None):
        return inst.box
    if inst.amodal_box is None:
        raise ValueError(
            f"boxes='amodal' (--boxes amodal) but annotation {inst.id} of image {image.image_id} ({image.file_name}) "
            "has no amodal box; use boxes='auto' or 'visible' (--boxes auto|visible)"
        )
    return inst.amodal_box


def _predict(dataset: Dataset, mask_fn: MaskFn, method: str, boxes: str) -> Dataset:
    images: list[AnnotatedImage] = []
    for im in dataset.images:
        preds: list[Instance] = []
        for inst in im.instances:
            if inst.extra.get("unknown"):  # an unknown occluder is nobody's target (the evaluation skips it too)
                continue
            box = clip_box(input_box(inst, im, boxes), im.width, im.height)
            mask = LazyMask.from_array(mask_fn(box, im.height, im.width))
            preds.append(
                Instance(
                    id=inst.id,
                    category=inst.category,
                    box=box,
                    mask=mask,
                    amodal_box=box,
                    amodal_mask=mask,
                    extra={"score": 1.0, "method": method, "given_box": list(box)},
                )
            )
        images.append(
            AnnotatedImage(
                image_id=im.image_id,
                path=im.path,
                width=im.width,
                height=im.height,
                instances=preds,
                extra=dict(im.extra),
            )
        )
    return Dataset(
        images=images,
        categories=list(dataset.categories),
        source=dataset.source,
        format="predictions",
        warnings=[],
        category_ids=dict(dataset.category_ids),
    )


def box_fill(dataset: Dataset, *, boxes: str = "auto") -> Dataset:
    """Predict every object as its box filled (pixel centres inside the box), as visible and amodal mask."""
    return _predict(dataset, box_to_pixel_mask, "box-fill", boxes)


def ellipse(dataset: Dataset, *, boxes: str = "auto") -> Dataset:
    """Predict every object as the ellipse inscribed in its box, as visible and amodal mask."""
    return _predict(dataset, ellipse_mask, "ellipse", boxes)


#: Model-free methods by their CLI name.
BASELINES: dict[str, Callable[..., Dataset]] = {"box-fill": box_fill, "ellipse": ellipse}
