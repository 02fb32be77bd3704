"""Settings of the image-resolution mask refinement (:func:`occseg.refine.refine_object`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

COLOUR_MODES = ("none", "histogram", "gmm", "grabcut")


@dataclass
class RefineConfig:
    """How one object's visible mask is refined at image resolution, from its CompositionalNet cell map.

    Everything runs inside the box padded by ``region_pad``, on a working grid where the box is at most
    ``work_height`` px high. Per-pixel object log-odds:
    ``score_weight * clip(signed cell margin, +-score_clip)`` (bilinear from the 16-px cells; + object cells,
    - the others) ``+ shape_weight * (1 - r^2)`` (``r`` the normalised radius of the ellipse inscribed in the
    box) ``+ bias``; pixels outside the box are never object. Then the colour stage (``colour``):

    * ``"gmm"`` (default): object and background RGB Gaussian mixtures (``gmm_components`` each, fitted on
      ``gmm_samples`` pixels) weighted by the current object probability (so the model's confident object
      cells seed the object model, its context cells and the ring around the box the background model);
      ``colour_weight`` x their log-likelihood ratio is added to the log-odds; re-estimated ``colour_iters``
      times;
    * ``"histogram"``: the same with soft Lab colour histograms (``colour_bins`` per channel);
    * ``"grabcut"``: OpenCV GrabCut (colour GMMs + graph cut, ``grabcut_iters`` rounds) from a trimap of the
      log-odds: the ``seed_fg`` share of the box with the highest log-odds and the inner ``core`` share of
      the ellipse definite object, the ``seed_bg`` share with the lowest definite background, the rest
      probable object / background by sign; outside the box definite background;
    * ``"none"``: the log-odds alone.

    Optional mean-field rounds (``mean_field_iters``) use the guided filter as an edge-aware pairwise kernel;
    ``guided`` upsamples the probability with the guided filter (the image as guide, the box at most
    ``guide_height`` px high, radius ``guided_radius`` feature cells). Holes are filled and components
    smaller than ``min_component`` of the largest dropped.

    The defaults were chosen on the validation split of coco128-seg's training images (``train_ids[1::5]``,
    27 persons) pooled with coco-mini's persons (126), the CompositionalNet trained on the rest of the
    training images; never on the test persons (``benchmarks/refine_coco.py``).
    """

    enabled: bool = True
    work_height: int = 64  # box height (px) at the working resolution; smaller boxes stay at their size
    region_pad: float = 0.3  # background margin around the box, as a fraction of its height / width
    # unary log-odds
    score_weight: float = 0.3
    score_clip: float = 4.0
    shape_weight: float = 1.5
    bias: float = 0.0
    # colour models
    colour: str = "gmm"  # "none" | "histogram" | "gmm" | "grabcut"
    colour_weight: float = 1.5
    colour_bins: int = 16
    colour_iters: int = 2
    gmm_components: int = 5  # per colour model (colour="gmm")
    gmm_samples: int = 1000  # pixels each GMM is fitted on (colour="gmm"); evaluated on all
    grabcut_iters: int = 1
    seed_fg: float = 0.4  # share of the box (highest object log-odds) that is a definite-object GrabCut seed
    seed_bg: float = 0.0  # share of the box (lowest object log-odds) that is a definite-background seed
    core: float = 0.15  # inner share of the ellipse area that is a definite-object seed (0: none)
    # edge-aware smoothing
    guided: bool = True  # edge-aware upsampling of the object probability with the guided filter
    guide_height: int = 128  # box height (px) at which the guided filter runs (smaller boxes: their own size)
    guided_radius: float = 1.0  # in 16-px feature cells (of the crop)
    guided_eps: float = 1e-3  # guided-filter regulariser, guide in [0, 1] RGB
    mean_field_iters: int = 0
    mean_field_weight: float = 2.0
    # clean-up
    fill_holes: bool = True
    min_component: float = 0.05  # drop object components smaller than this share of the largest one

    def __post_init__(self) -> None:
        errors = []
        if self.colour not in COLOUR_MODES:
            errors.append(f"colour must be one of {', '.join(COLOUR_MODES)}, got {self.colour!r}")
        for name in ("work_height", "guide_height"):
            if getattr(self, name) < 8:
                errors.append(f"{name} must be >= 8, got {getattr(self, name)}")
        if not 0.0 <= self.region_pad <= 2.0:
            errors.append(f"region_pad must be in [0, 2], got {self.region_pad}")
        if self.score_clip <= 0:
            errors.append(f"score_clip must be > 0, got {self.score_clip}")
        for name in ("score_weight", "shape_weight", "colour_weight", "mean_field_weight", "guided_radius"):
            if getattr(self, name) < 0:
                errors.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 2 <= self.colour_bins <= 64:
            errors.append(f"colour_bins must be in [2, 64], got {self.colour_bins}")
        if self.gmm_components < 1 or self.gmm_samples < 10:
            errors.append(
                f"gmm_components must be >= 1 and gmm_samples >= 10, got {self.gmm_components}, {self.gmm_samples}"
            )
        for name in ("colour_iters", "grabcut_iters", "mean_field_iters"):
            if getattr(self, name) < 0:
                errors.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.guided_eps <= 0:
            errors.append(f"guided_eps must be > 0, got {self.guided_eps}")
        for name in ("seed_fg", "seed_bg"):
            if not 0.0 <= getattr(self, name) < 1.0:
                errors.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.core < 1.0:
            errors.append(f"core must be in [0, 1), got {self.core}")
        if not 0.0 <= self.min_component <= 1.0:
            errors.append(f"min_component must be in [0, 1], got {self.min_component}")
        if errors:
            raise ValueError("RefineConfig: " + "; ".join(errors))

    @classmethod
    def from_dict(cls, values: dict) -> RefineConfig:
        """A config from a dict (e.g. JSON); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"RefineConfig: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return cls(**values)
