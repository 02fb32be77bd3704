"""The types of a scene's explanation, below every step that makes or reads them: one object's likelihood
terms (:class:`ObjectState`) and result (:class:`ObjectResult`), and a scene's config (:class:`SceneConfig`) and
result (:class:`SceneResult`). Per-object inference (:mod:`occseg.inference.single`), scenes
(:mod:`occseg.inference.scene`), the reasoning (:mod:`occseg.reasoning.orm`) and the refinement
(:mod:`occseg.refine`) all import them from here, so none of them imports another to name a type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from occseg.checks import is_integer, is_number
from occseg.choices import BoxKind, Competition, HiddenPart, OrderCue, Reasoning, check_choice, choices
from occseg.geometry.boxes import Box, CropWindow
from occseg.refine.config import RefineConfig


@dataclass
class ClassTerms:
    """Likelihood terms of one object under one class, on that class's grid."""

    offset: tuple[int, int]
    valid: torch.Tensor  # (H, W)
    in_box: torch.Tensor  # (H, W)
    log_fg: torch.Tensor  # (M, H, W)  log alpha.L
    log_ctx: torch.Tensor  # (M, H, W)  log chi.L, or the crop's own ring where that explains better
    log_ctx_model: torch.Tensor  # (M, H, W)  log chi.L alone (for classification)
    log_out: torch.Tensor  # (H, W)
    log_act: torch.Tensor  # (K, H, W) on the grid, for amodal-box completion


@dataclass
class ObjectState:
    """Everything one backbone pass gives about one boxed object."""

    box: Box
    window: CropWindow
    crop_cells: tuple[int, int]
    stride: int
    image_size: tuple[int, int]  # (height, width)
    terms: dict[str, ClassTerms]
    completed_box: Box | None = None  # amodal box completed from a visible box, when asked for
    # (B, h, w) log-probabilities of the part-position bins of every crop cell (CompNetModel.position), None
    # when the model has no position classifier
    position: torch.Tensor | None = None
    head: Any = None  # the mask head's inputs (occseg.head.inputs.HeadCrop) when the model has a head


@dataclass
class ObjectResult:
    """The prediction for one object. Masks are boolean image-size arrays."""

    category: str
    confidence: float
    class_scores: dict[str, float]
    mixture: int
    visible: np.ndarray
    amodal: np.ndarray
    labels: np.ndarray  # (h, w) crop-cell labels: 0 occluder, 1 object, 2 context
    margin: np.ndarray  # (h, w) winning score minus the best competitor
    fg_score: np.ndarray  # (h, w) object log-score per crop cell (for the reasoning's competition)
    box: Box
    amodal_box: Box
    extra: dict = field(default_factory=dict)

    @property
    def occluded(self) -> np.ndarray:
        return self.amodal & ~self.visible


#: how the reasoning decides who is in front (SceneConfig.order)
ORDER_CUES: tuple[str, ...] = choices(OrderCue)


@dataclass
class SceneConfig:
    """How a scene is explained. ``reasoning``: ``off`` (independent objects), ``nod`` (per-pixel
    competition only; the default: the best measured with the colour competition) or ``od`` (the whole
    conflict goes to the object in front; the paper's best with its 16-px cell competition)."""

    reasoning: Reasoning = "nod"
    reasoning_iters: int = 2  # 0: no round, the same as reasoning "off"
    boxes: BoxKind = "amodal"  # what the given boxes are: "amodal" or "visible"
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
    # released code), "head" (refined masks, the mask head's logits; a model with a head); "auto": colour when
    # the image is given and refine is on, else foreground
    competition: Competition = "auto"
    # colour competition, nod: the object behind a pair takes a pixel both claim only when its colour is more
    # than this many nats likelier under its model; closer calls go to the object in front. Chosen with the
    # part-position order on the train splits (validation) of the Occlusion Challenge (seed 0, 120 images) and
    # of a second one (seed 1, 300 images) among 0 / 0.5 / 1 / 2 / 4: 1 gave the best visible mIoU on both
    # (mean 52.6 / 46.9 against 52.4 / 46.8 at 0.5) and more ordered pairs (72.8 / 65.9 % against 68.8 / 64.1);
    # so it did on the second challenge's test split (59.4 / 72.5 % against 58.8 / 68.0)
    colour_margin: float = 1.0
    # head competition: a pixel two objects both claim goes to one of them only when its head logit exceeds the
    # other's by more than this; closer calls stay with both (inf: every contested pixel stays with both, the
    # refined masks decide). Chosen on the validation persons (benchmarks/mask_head.py --validation --scene)
    head_tie: float = 4.0
    # head_colour competition: where the head is unsure (logits within head_tie), a contested pixel goes to the
    # object whose colour model gives its colour a log-density higher by more than this many nats; closer calls stay
    # with both (not the default: it lowered the visible masks on the real-photo validation split coco128-seg val at
    # every tie from 0 to 8, docs/mask-head.md)
    colour_tie: float = 2.0
    # who is in front of an overlapping pair: "counts" (the paper: the object that wins more of the conflicted
    # pixels), "position" (the model's part-position classifier on the cells where the boxes meet,
    # occseg.reasoning.position_order); "auto": position when the model has the classifier, else counts
    order: OrderCue = "auto"
    # order "gated": the part-position vote decides a pair only when its confidence (the mean vote per cell m as
    # m / (1 + m)) is at least this; the competition's pixel counts decide the others (not the default: on the larger
    # challenge's validation split it ordered fewer occluded pairs than the vote, docs/mask-head.md)
    sure_vote: float = 0.1
    # an object's hidden part (occseg.choices.HiddenPart): "occluder", the cells labelled occluder inside the shape
    # prior; "front", those and the cells' amodal shape under the objects the reasoning puts in front; "shape", the
    # cells' amodal shape less the (head's) visible mask; "agree", front and the pixels seen in an object behind out of
    # the amodal mask of the object in front; "auto": agree with a mask head, else occluder. With a head, front ordered
    # more occluded pairs than occluder on the larger challenge's train split (validation; 69.5 against 67.4 %) for
    # 0.5 points of amodal mean, and agree more than front with the head competition (63.2 against 57.9 %) for 1.0
    # (docs/mask-head.md); without a head the choice is not measured yet
    hidden: HiddenPart = "auto"
    batch_size: int | None = None  # crops per backbone batch; None: 1 on CPU, 8 on CUDA

    def __post_init__(self) -> None:
        check_choice("reasoning", self.reasoning, Reasoning)
        check_choice("boxes", self.boxes, BoxKind)
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
        if not (is_number(self.head_tie) and self.head_tie >= 0):
            raise ValueError(f"head_tie must be a number >= 0 (inf allowed), not {self.head_tie!r}")
        if not (is_number(self.colour_tie) and self.colour_tie >= 0):
            raise ValueError(f"colour_tie must be a number >= 0 (inf allowed), not {self.colour_tie!r}")
        if not (is_number(self.sure_vote) and 0 <= self.sure_vote <= 1):
            raise ValueError(f"sure_vote must be a number in [0, 1], not {self.sure_vote!r}")
        check_choice("competition", self.competition, Competition)
        check_choice("order", self.order, OrderCue)
        check_choice("hidden", self.hidden, HiddenPart)

    @property
    def reasoning_run(self) -> Reasoning:
        """The reasoning that actually runs: ``off`` with no round of it (``reasoning_iters == 0``)."""
        return self.reasoning if self.reasoning_iters > 0 else "off"


@dataclass
class SceneResult:
    """Every object of one image explained: per object its result, depth layer and group, and the pairwise order."""

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
