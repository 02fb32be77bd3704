"""All boxed objects of one image: one backbone pass per object, then per-object inference or the
Occlusion Reasoning Module over them together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from occseg.checks import is_integer, is_number
from occseg.compnet.model import CompNetModel
from occseg.data.images import as_rgb_array
from occseg.geometry.boxes import Box, mask_to_box
from occseg.head.predict import attach_head_inputs, model_fine_layer
from occseg.inference.single import (
    ObjectResult,
    ObjectState,
    classify,
    complete_amodal_box,
    finish_object,
    prepare_object,
)
from occseg.refine import RefineConfig

#: how the reasoning decides who is in front (SceneConfig.order)
ORDER_CUES = ("auto", "counts", "position")


@dataclass
class SceneConfig:
    """How a scene is explained. ``reasoning``: ``off`` (independent objects), ``nod`` (per-pixel
    competition only; the default: the best measured with the colour competition) or ``od`` (the whole
    conflict goes to the object in front; the paper's best with its 16-px cell competition)."""

    reasoning: str = "nod"
    reasoning_iters: int = 2  # 0: no round, the same as reasoning "off"
    boxes: str = "amodal"  # what the given boxes are: "amodal" or "visible"
    # with visible boxes: complete each to an amodal box by sliding its features over the mixtures (the paper's
    # way; occseg.inference.single.complete_amodal_box), which then bounds the amodal mask and is reported. Off by
    # default: on the Occlusion Challenge's test split (seed 0) the completed boxes' IoU with the true amodal boxes
    # is 0.29, the visible boxes' own 0.88, and lower at every occlusion level (L3: 0.28 against 0.67); without it
    # an object's amodal box is that of its amodal mask and its given box
    complete_boxes: bool = False
    # image-resolution refinement of the visible masks (measured +0.10 mIoU on COCO persons); None: off
    refine: RefineConfig | None = field(default_factory=RefineConfig)
    # the reasoning's per-pixel competition (occseg.reasoning.orm): "colour" (refined masks, colour models at
    # image resolution), "foreground" (the paper: the model's likelihoods on 16-px cells), "margin" (the
    # released code), "head" (refined masks, the mask head's logits; a model with a head); "auto": colour when the
    # image is given and refine is on, else foreground
    competition: str = "auto"
    # colour competition, nod: the object behind a pair takes a pixel both claim only when its colour is more
    # than this many nats likelier under its model; closer calls go to the object in front. Chosen with the
    # part-position order on the train splits (validation) of the Occlusion Challenge (seed 0, 120 images) and
    # of a second one (seed 1, 300 images) among 0 / 0.5 / 1 / 2 / 4: 1 gave the best visible mIoU on both
    # (mean 52.6 / 46.9 against 52.4 / 46.8 at 0.5) and more ordered pairs (72.8 / 65.9 % against 68.8 / 64.1);
    # so it did on the second challenge's test split (59.4 / 72.5 % against 58.8 / 68.0)
    colour_margin: float = 1.0
    # who is in front of an overlapping pair: "counts" (the paper: the object that wins more of the conflicted
    # pixels), "position" (the model's part-position classifier on the cells where the boxes meet,
    # occseg.reasoning.position_order); "auto": position when the model has the classifier, else counts
    order: str = "auto"
    batch_size: int | None = None  # crops per backbone batch; None: 1 on CPU, 8 on CUDA

    def __post_init__(self) -> None:
        if self.reasoning not in ("off", "nod", "od"):
            raise ValueError(f"reasoning must be off, nod or od, not {self.reasoning!r}")
        if self.boxes not in ("amodal", "visible"):
            raise ValueError(f"boxes must be amodal or visible, not {self.boxes!r}")
        if not is_integer(self.reasoning_iters):
            raise ValueError(f"reasoning_iters must be an integer, not {self.reasoning_iters!r}")
        self.reasoning_iters = int(self.reasoning_iters)  # numpy integers too
        if self.refine is True:  # as predict_dataset(refine=True) words it
            self.refine = RefineConfig()
        elif self.refine is False:
            self.refine = None
        elif self.refine is not None and not isinstance(self.refine, RefineConfig):
            raise ValueError(f"refine must be a RefineConfig, True, False or None, not {self.refine!r}")
        if self.reasoning_iters < 0:
            raise ValueError("reasoning_iters must be >= 0")
        if is_integer(self.batch_size):
            self.batch_size = int(self.batch_size)  # numpy integers too
        if self.batch_size is not None and (
            not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1
        ):
            raise ValueError(f"batch_size must be None (automatic) or at least 1, not {self.batch_size!r}")
        if not is_number(self.colour_margin):
            raise ValueError(f"colour_margin must be a number >= 0, not {self.colour_margin!r}")
        if not isinstance(self.complete_boxes, (bool, np.bool_)):
            raise ValueError(f"complete_boxes must be True or False, not {self.complete_boxes!r}")
        if not self.colour_margin >= 0:
            raise ValueError(f"colour_margin must be >= 0, not {self.colour_margin}")
        if self.competition not in ("auto", "colour", "foreground", "margin", "head"):
            raise ValueError(f"competition must be auto, colour, foreground, margin or head, not {self.competition!r}")
        if self.order not in ORDER_CUES:
            raise ValueError(f"order must be {', '.join(ORDER_CUES)}, not {self.order!r}")

    @property
    def reasoning_run(self) -> str:
        """The reasoning that actually runs: ``off`` with no round of it (``reasoning_iters == 0``)."""
        return self.reasoning if self.reasoning_iters > 0 else "off"


@dataclass
class SceneResult:
    objects: list[ObjectResult]
    order: np.ndarray  # (N, N) +1: row object in front of column object, -1 behind, 0 unrelated
    layers: list[int]  # depth layer per object (0 = front) within its group of overlapping objects
    groups: list[int]  # connected group of overlapping objects
    report: dict = field(default_factory=dict)
    # (N, N) symmetric, in [0, 1): how sure the reasoning is of each relation of ``order``; 0 where it decided
    # none (and everywhere without reasoning, where the order is only read from the masks). For the part-position
    # order ``m / (1 + m)`` of the mean vote per cell in nats, for pixel counts ``|won_i - won_j| / conflict``.
    # None: zeros
    order_confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.order_confidence is None:
            self.order_confidence = np.zeros(np.shape(self.order), dtype=np.float64)
        elif np.shape(self.order_confidence) != np.shape(self.order):
            raise ValueError(
                f"order_confidence has shape {np.shape(self.order_confidence)}, the order {np.shape(self.order)}"
            )


def model_crop_config(model: CompNetModel, batch_size: int | None, device):
    """How the model's crops are made (its training's height and pad), in batches of ``batch_size`` (``None``: the
    default for ``device``, :func:`~occseg.compnet.learn.default_batch_size`)."""
    from occseg.compnet.learn import default_batch_size
    from occseg.features.crops import CropConfig

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
) -> list[ObjectState]:
    """One backbone pass per box (batched), turned into every class's likelihood terms."""
    from occseg.features.crops import extract_box_features

    if len(boxes) == 0:  # a list, or an (N, 4) array
        return []
    image = as_rgb_array(image)  # a PIL image or a tensor too: the size below is read from it
    ccfg = model_crop_config(model, cfg.batch_size, device or backbone.device)
    layer = model_fine_layer(model)  # the mask head's finer block, read in the same pass (None: no head)
    feats = extract_box_features(backbone, image, [tuple(b) for b in boxes], ccfg, device=device, fine_layer=layer)
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
        if res.report.get("competition") not in ("colour", "head"):
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
            objs.append(finish_object(model, st, cls, mix, conf, scores))
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
