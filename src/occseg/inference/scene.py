"""All boxed objects of one image: one backbone pass per object, then per-object inference or the
Occlusion Reasoning Module over them together."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occseg.choices import IMAGE_COMPETITIONS
from occseg.compnet.model import CompNetModel
from occseg.data.images import as_rgb_array
from occseg.geometry.boxes import Box, mask_to_box
from occseg.head.predict import attach_head_inputs, model_fine_layer
from occseg.inference.single import classify, complete_amodal_box, finish_object, prepare_object
from occseg.inference.types import ORDER_CUES, ObjectResult, ObjectState, SceneConfig, SceneResult

# the scene types live in occseg.inference.types; importing them from here keeps working
__all__ = [
    "ORDER_CUES",
    "ObjectResult",
    "ObjectState",
    "SceneConfig",
    "SceneResult",
    "explain_scene",
    "model_crop_config",
    "prepare_scene",
    "refine_scene",
]


def model_crop_config(model: CompNetModel, batch_size: int | None, device):
    """How the model's crops are made (its training's height and pad), in batches of ``batch_size`` (``None``: the
    default for ``device``, :func:`~occseg.features.crops.default_batch_size`)."""
    from occseg.features.crops import CropConfig, default_batch_size

    s = model.settings
    return CropConfig(target_height=s.target_height, pad=s.pad, batch_size=default_batch_size(batch_size, device))


def prepare_scene(
    model: CompNetModel,
    backbone,
    image: np.ndarray,
    boxes: Sequence[Box],
    cfg: SceneConfig,
    *,
    device=None,
    progress: bool = False,
) -> list[ObjectState]:
    """One backbone pass per box (batched), turned into every class's likelihood terms (``progress``: a bar)."""
    from occseg.features.crops import extract_box_features

    if len(boxes) == 0:  # a list, or an (N, 4) array
        return []
    image = as_rgb_array(image)  # a PIL image or a tensor too: the size below is read from it
    ccfg = model_crop_config(model, cfg.batch_size, device or backbone.device)
    layer = model_fine_layer(model)  # the mask head's finer block, read in the same pass (None: no head)
    feats = extract_box_features(
        backbone, image, [tuple(b) for b in boxes], ccfg, device=device, progress=progress, fine_layer=layer
    )
    size = (image.shape[0], image.shape[1])
    states = [prepare_object(model, f.features, f.box, f.window, size) for f in feats]
    attach_head_inputs(model, image, feats, states)
    return states


def explain_scene(
    model: CompNetModel,
    states: list[ObjectState],
    cfg: SceneConfig,
    *,
    labels: Sequence[str | None] | None = None,
    image: np.ndarray | None = None,
) -> SceneResult:
    """Class, masks and order of every object; ``labels`` (per object, or None) fixes the class.

    With ``cfg.refine`` and the ``image``, the masks are refined at image resolution (:mod:`occseg.refine`):
    without reasoning, each object on its own; with reasoning and the colour competition (the default then),
    before the reasoning, which then works on the refined masks; with another competition, after it (a pixel
    the reasoning gave to another object stays out)."""
    if labels is not None and not isinstance(labels, str):
        labels = list(labels)  # a numpy array of names too
    if labels is not None and (isinstance(labels, str) or len(labels) != len(states)):
        got = repr(labels) if isinstance(labels, str) else f"{len(labels)} labels"
        raise ValueError(f"labels: need one class name (or None) per box, {len(states)} in all; got {got}")
    empty = [k for k, lab in enumerate(labels or []) if isinstance(lab, str) and not lab.strip()]
    if empty:
        raise ValueError(f"labels: box {empty[0]} has an empty class name; give a class or None (classify it)")
    if image is not None:
        image = as_rgb_array(image)  # grayscale, RGBA, 16-bit, float, PIL, tensors: as the features saw it
    res = _explain(model, states, cfg, labels, image)
    if image is not None and cfg.refine is not None and cfg.refine.enabled and res.objects:
        if res.report.get("competition") not in IMAGE_COMPETITIONS:
            refine_scene(image, states, res, cfg.refine, exclusive=cfg.reasoning_run != "off" and len(states) > 1)
            _apply_visible_boxes(model, states, res.objects, cfg)  # the completed amodal boxes again
    return res


def refine_scene(image: np.ndarray, states: list[ObjectState], res: SceneResult, rcfg, *, exclusive: bool) -> None:
    """Refine every object's visible mask in place. With ``exclusive`` (reasoning on), pixels visible in
    another object after the reasoning, or already taken by a refined object in front, stay out, so no pixel
    is visible in two objects; objects are refined front to back."""
    from occseg.refine import refine_object

    objs = res.objects
    before = [o.visible.copy() for o in objs]
    taken = np.zeros_like(before[0])
    for k in sorted(range(len(objs)), key=lambda i: (res.layers[i], i)):
        exclude = None
        if exclusive:
            others = np.zeros_like(taken)
            for j, v in enumerate(before):
                if j != k:
                    others |= v
            exclude = others | taken
        o = objs[k]
        o.visible, o.amodal = refine_object(image, o, states[k], rcfg, exclude=exclude)
        o.amodal_box = mask_to_box(o.amodal) or o.amodal_box
        if exclusive:
            taken |= o.visible


def _explain(
    model: CompNetModel,
    states: list[ObjectState],
    cfg: SceneConfig,
    labels: Sequence[str | None] | None,
    image: np.ndarray | None = None,
) -> SceneResult:
    given = list(labels) if labels is not None else [None] * len(states)
    if not states:
        return SceneResult(objects=[], order=np.zeros((0, 0), np.int8), layers=[], groups=[], report={})
    for st in states:
        st.completed_box = None  # never reuse a completion from an earlier call
    if cfg.boxes == "visible" and cfg.complete_boxes:
        # complete each partial box to an amodal box (reported as the amodal box); the masks still come from the
        # terms of the visible crop, clipped to the completed box (no second backbone pass)
        for i, st in enumerate(states):
            cls, _, _, _ = classify(model, st, given_label=given[i])
            st.completed_box = complete_amodal_box(model, st, cls)
    if cfg.reasoning_run == "off" or len(states) < 2:
        objs = []
        for i, st in enumerate(states):
            cls, mix, conf, scores = classify(model, st, given_label=given[i])
            objs.append(finish_object(model, st, cls, mix, conf, scores, hidden=cfg.hidden))
        _apply_visible_boxes(model, states, objs, cfg)
        from occseg.reasoning.order import order_from_masks, scene_layers

        order = order_from_masks(objs)
        layers, groups, rep = scene_layers(order, np.abs(order).astype(float))
        return SceneResult(objects=objs, order=order, layers=layers, groups=groups, report=rep)
    from occseg.reasoning.orm import reason

    res = reason(model, states, cfg, given, image=image)
    _apply_visible_boxes(model, states, res.objects, cfg)
    return res


def _apply_visible_boxes(model, states, objs, cfg) -> None:
    """With visible boxes given, an object's amodal box holds its given (visible) box, or the box completed from
    it (``cfg.complete_boxes``), as well as its amodal mask."""
    if cfg.boxes != "visible":
        return
    for st, o in zip(states, objs):
        abox = st.completed_box or st.box
        if abox is not None:
            o.amodal_box = (
                min(abox[0], o.amodal_box[0]),
                min(abox[1], o.amodal_box[1]),
                max(abox[2], o.amodal_box[2]),
                max(abox[3], o.amodal_box[3]),
            )
