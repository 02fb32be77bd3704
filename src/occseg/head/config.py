"""Settings of the mask head: what it is (saved with the model) and how it is trained."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: how a head's mask is used when an object's visible mask is decided
HeadUse = Literal["head", "refine"]
HEAD_USES: tuple[str, ...] = ("head", "refine")
#: the self-training targets: each training box's refined mask on its own, or the masks of the image's scene
#: (all given boxes together, the default reasoning: contested pixels are resolved between the objects)
TargetSource = Literal["object", "scene"]
TARGET_SOURCES: tuple[str, ...] = ("object", "scene")
#: strides of the finer backbone block the head can read (its output stride): 8, or 4 at 4x the cells
FINE_STRIDES: tuple[int, ...] = (8, 4)
#: the HeadTrainConfig options added after the first heads, at the values that leave them out (a head's training
#: record names them only when they differ, so a record without them is a head learned without them)
OPTIONS_OFF: dict[str, object] = {"fine_stride": 8, "targets": "object", "target_band": 0.0, "paste": 0}

#: the CompNet's per-cell inputs: log-posteriors of object / context / occluder, the part-position classifier's
#: probability of lying inside the box and its expected box-relative position (u, v)
COMPNET_CHANNELS = 6
#: the refinement's unary when the head's logits are its prior (occseg.refine.RefineConfig changes): the head's
#: logits alone (no ellipse), leaning to background by 0.5 (``bias``); chosen on validation among score weights
#: 0.5 / 1 / 2 and biases 0 / -0.25 / -0.5 / -0.75 / -1 (docs/mask-head.md)
HEAD_REFINE = {"score_weight": 1.0, "shape_weight": 0.0, "score_clip": 6.0, "bias": -0.5}
#: per head cell: Lab colour (3), box-relative position (2), inside the box (1), inside another given box (1)
EXTRA_CHANNELS = 7


@dataclass
class HeadSettings:
    """What a learned head is; stored in ``model.json`` under ``mask_head`` and checked on load."""

    fine_layer: str  # module path of the finer block in the backbone's trunk
    fine_channels: int
    fine_stride: int  # the head's output stride in crop pixels
    coarse_channels: int
    width: int = 32  # channels of the head's hidden layers
    compnet_inputs: bool = True  # the CompNet's per-cell terms are inputs
    threshold: float = 0.0  # logit above which a pixel is object
    use: str = "head"  # HeadUse: the head's mask alone, or as the prior of the image-resolution refinement
    training: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.use not in HEAD_USES:
            raise ValueError(f"mask_head use must be {' or '.join(HEAD_USES)}, not {self.use!r}")


@dataclass
class HeadTrainConfig:
    """How the head is trained (box-supervised: BoxInst's projection + colour-affinity pairwise losses, a loss
    pushing the cells outside the box to background, and self-training towards the CompNet's refined masks).

    The defaults were chosen on the validation persons (coco128-seg ``train_ids[1::5]`` and coco-mini, the model
    trained on the rest of coco128-seg's training images; ``benchmarks/mask_head.py --validation``): self-training
    (weight 1) raised the head from box-fill level (0.51 / 0.54) to 0.62 / 0.65; a second round on the first
    head's refined masks with 60 epochs per round raised the head with refinement from 0.643 / 0.681 to
    0.660 / 0.684 (refinement bias -0.5); 3 rounds, width 48, colour threshold 0.5, scale jitter, flip-averaged
    logits at test time and the CompNet's cells as inputs did not help; nor did confident-only targets
    (``target_band`` 0.2: 0.654 / 0.682), self-training targets from the image's scene (``targets="scene"``: 0.643 /
    0.667) or the stride-4 block (``fine_stride=4``: 0.637 / 0.658, against 0.661 / 0.682 in the same run).
    Copy-paste composites (``paste`` 1, one per box) with 20 epochs a round (the former default's number of steps)
    raised both sets to 0.668 / 0.691 (0.659 / 0.683 in the same run) and the larger challenge's validation masks
    (visible mean 57.3 against 53.9 with the default reasoning); docs/mask-head.md, "Copy-paste occlusion
    training"."""

    epochs: int = 20  # per round (with the composites: as many steps as 60 without them)
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 32
    compnet_inputs: bool = False
    pairwise_weight: float = 1.0
    pairwise_tau: float = 0.3  # colour similarity above which two neighbouring cells are pushed to one label
    pairwise_dilation: int = 2
    outside_weight: float = 1.0  # weight of a loss pushing the cells outside the box to background
    self_train: float = 1.0  # weight of a loss towards the refined CompNet masks (noisy targets); 0: off
    rounds: int = 2  # self-training rounds: each later one learns from the previous head's refined masks
    warmup: float = 0.3  # share of the epochs over which the pairwise weight ramps up from 0
    flip: bool = True
    scales: tuple[int, ...] = (224,)  # crop heights the training boxes are rendered at (scale jitter: several)
    seed: int = 0
    use: str = "refine"
    fine_stride: int = 8  # the finer block read and the head's output stride (FINE_STRIDES)
    targets: str = "object"  # TargetSource of the self-training targets
    target_band: float = 0.0  # cells whose target share lies strictly between this and 1 minus it are not learned
    paste: int = 1  # copy-paste composites per training box (occseg.head.paste): another box pasted over it
    paste_height: tuple[float, float] = (0.8, 1.2)  # the pasted height's range, relative to the covered box's
    paste_cover: tuple[float, float] = (0.2, 0.6)  # the range of the share of the covered box's width it covers

    def __post_init__(self) -> None:
        if self.fine_stride not in FINE_STRIDES or self.targets not in TARGET_SOURCES:
            raise ValueError(
                f"HeadTrainConfig fine_stride must be one of {FINE_STRIDES} and targets one of {TARGET_SOURCES}; "
                f"got {self.fine_stride!r}, {self.targets!r}"
            )
        if not (self.epochs >= 1 and self.batch_size >= 1 and self.lr > 0 and self.width >= 1 and self.rounds >= 1):
            raise ValueError(
                f"HeadTrainConfig needs epochs, batch_size, width, rounds >= 1 and lr > 0; got {self.epochs}, "
                f"{self.batch_size}, {self.width}, {self.rounds}, {self.lr}"
            )
        if not 0.0 <= self.target_band < 0.5:
            raise ValueError(f"HeadTrainConfig target_band must lie in [0, 0.5), not {self.target_band!r}")
        if not (0.0 <= self.pairwise_tau <= 1.0 and self.pairwise_weight >= 0 and 0.0 <= self.warmup <= 1.0):
            raise ValueError("HeadTrainConfig: pairwise_tau and warmup must lie in [0, 1], pairwise_weight >= 0")
        if self.use not in HEAD_USES:
            raise ValueError(f"HeadTrainConfig use must be {' or '.join(HEAD_USES)}, not {self.use!r}")
        self.paste_height = (float(self.paste_height[0]), float(self.paste_height[1]))
        self.paste_cover = (float(self.paste_cover[0]), float(self.paste_cover[1]))
        if self.paste < 0 or (self.paste > 0 and self.self_train <= 0):
            raise ValueError(f"HeadTrainConfig paste must be >= 0, and needs self_train > 0; got {self.paste!r}")
        h, c = self.paste_height, self.paste_cover
        if not (0 < h[0] <= h[1] and 0 < c[0] <= c[1] <= 1):
            raise ValueError(
                f"HeadTrainConfig paste_height must be 0 < lo <= hi, paste_cover 0 < lo <= hi <= 1: {h}, {c}"
            )
        self.scales = tuple(int(s) for s in self.scales)
        if not self.scales or min(self.scales) < 16:
            raise ValueError(f"HeadTrainConfig scales must be crop heights >= 16, not {self.scales!r}")
