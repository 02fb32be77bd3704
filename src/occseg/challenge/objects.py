"""Selecting whole objects from an annotated dataset and cutting them out with their masks.

An instance is *whole* when nothing hides any part of it, so its mask is its amodal mask:

- it is not a crowd region and has a mask;
- neither its mask nor its annotated box comes within ``border_margin`` pixels of the image border;
- its mask, dilated by ``touch_px`` pixels, does not meet the mask (or, without one, the box) of any other
  annotated instance of the image, whatever its class (so a gap narrower than ``touch_px`` pixels is contact);
- where the source has amodal masks, it is not occluded (occlusion fraction 0);
- its mask is at least ``min_height`` pixels tall.

Each rejected instance is listed with every reason it fails; counts use its first reason in :data:`REASONS` order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.images import ImageError, load_rgb
from occseg.geometry.boxes import box_to_pixel_mask, mask_to_box

#: Rejection reasons, in the order used to give each rejected instance one primary reason.
REASONS: tuple[str, ...] = (
    "iscrowd",
    "no_mask",
    "empty_mask",
    "too_short",
    "touches_border",
    "touches_other",
    "occluded",
    "image_unreadable",
)


@dataclass(frozen=True)
class SelectionConfig:
    """The rule for a whole object."""

    min_height: int = 40  # mask height in pixels
    border_margin: int = 2  # reject masks / boxes closer than this to the border
    touch_px: int = 2  # dilation radius when testing contact with other instances

    def to_json(self) -> dict[str, int]:
        return {"min_height": self.min_height, "border_margin": self.border_margin, "touch_px": self.touch_px}


@dataclass(frozen=True)
class CutOut:
    """A whole object cut out of its source image: the tight box of its mask."""

    key: str  # unique within a run, e.g. "12:345" (image id : annotation id)
    category: str
    rgb: np.ndarray  # (h, w, 3) uint8, the source pixels of the tight box (outside the mask too)
    mask: np.ndarray  # (h, w) bool
    source: dict[str, Any]  # {"image": file name, "image_id": .., "annotation_id": ..} or a synthetic description
    unknown: bool = False  # an occluder of a class the target model never learns

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def rgba(self) -> np.ndarray:
        """The RGBA cut-out (alpha 255 on the mask, 0 elsewhere)."""
        alpha = self.mask.astype(np.uint8) * 255
        return np.dstack([self.rgb, alpha])


@dataclass
class CandidateReport:
    """The verdict on one instance of a considered class."""

    image: str
    image_id: int
    annotation_id: int
    category: str
    role: str  # "target" or "unknown"
    height: int  # mask height in pixels (0 without a mask)
    reasons: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_id": self.image_id,
            "annotation_id": self.annotation_id,
            "category": self.category,
            "role": self.role,
            "height": self.height,
            "kept": self.kept,
            "reasons": list(self.reasons),
        }


@dataclass
class Selection:
    """Kept cut-outs per role and the verdict on every candidate."""

    targets: list[CutOut]
    unknowns: list[CutOut]
    reports: list[CandidateReport]
    config: SelectionConfig

    def counts(self, role: str) -> dict[str, Any]:
        reps = [r for r in self.reports if r.role == role]
        by_reason = {reason: 0 for reason in REASONS}
        for r in reps:
            if r.reasons:
                by_reason[r.reasons[0]] += 1
        kept_per_class: dict[str, int] = {}
        candidates_per_class: dict[str, int] = {}
        for r in reps:
            candidates_per_class[r.category] = candidates_per_class.get(r.category, 0) + 1
            if r.kept:
                kept_per_class[r.category] = kept_per_class.get(r.category, 0) + 1
        return {
            "candidates": len(reps),
            "kept": sum(r.kept for r in reps),
            "rejected": sum(not r.kept for r in reps),
            "rejected_by_reason": {k: v for k, v in by_reason.items() if v},
            "candidates_per_class": dict(sorted(candidates_per_class.items())),
            "kept_per_class": dict(sorted(kept_per_class.items())),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.config.to_json(),
            "targets": self.counts("target"),
            "unknown": self.counts("unknown"),
            "objects": [r.to_json() for r in self.reports],
        }

    def describe(self, role: str = "target") -> str:
        """One line: kept / candidates and the rejection counts."""
        c = self.counts(role)
        reasons = ", ".join(f"{k}: {v}" for k, v in c["rejected_by_reason"].items()) or "none"
        return f"{c['kept']} kept of {c['candidates']} candidates; rejected by reason: {reasons}"


def _instance_array(inst: Instance, height: int, width: int) -> np.ndarray:
    """The visible mask of an instance as a bool array, its box where it has no mask."""
    if _has_mask(inst, height, width):
        return inst.mask.decode()  # type: ignore[union-attr]
    return box_to_pixel_mask(inst.box, height, width)


def _has_mask(inst: Instance, height: int, width: int) -> bool:
    return inst.mask is not None and (inst.mask.height, inst.mask.width) == (height, width)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def _near_border(box: Sequence[float], width: int, height: int, margin: int) -> bool:
    x1, y1, x2, y2 = box
    return x1 < margin or y1 < margin or x2 > width - margin or y2 > height - margin


def _judge_image(
    image: AnnotatedImage,
    roles: dict[str, str],
    config: SelectionConfig,
) -> tuple[list[CandidateReport], dict[int, np.ndarray]]:
    """Reports for the candidates of one image and the full-image masks of those that pass (by instance index)."""
    h, w = image.height, image.width
    cand_idx = [i for i, inst in enumerate(image.instances) if inst.category in roles]
    if not cand_idx:
        return [], {}
    arrays = [_instance_array(inst, h, w) for inst in image.instances]
    count = np.zeros((h, w), dtype=np.uint16)
    for a in arrays:
        count += a
    reports: list[CandidateReport] = []
    passed: dict[int, np.ndarray] = {}
    for i in cand_idx:
        inst = image.instances[i]
        mask = arrays[i] if _has_mask(inst, h, w) else None
        tight = mask_to_box(mask) if mask is not None else None
        height = 0 if tight is None else int(tight[3] - tight[1])
        rep = CandidateReport(
            image=image.file_name,
            image_id=image.image_id,
            annotation_id=inst.id,
            category=inst.category,
            role=roles[inst.category],
            height=height,
        )
        if inst.iscrowd:
            rep.reasons.append("iscrowd")
        if mask is None:
            rep.reasons.append("no_mask")
        elif tight is None:
            rep.reasons.append("empty_mask")
        if tight is not None:
            if height < config.min_height:
                rep.reasons.append("too_short")
            if _near_border(tight, w, h, config.border_margin) or _near_border(inst.box, w, h, config.border_margin):
                rep.reasons.append("touches_border")
            m = config.touch_px + 1
            x1, y1 = max(0, int(tight[0]) - m), max(0, int(tight[1]) - m)
            x2, y2 = min(w, int(tight[2]) + m), min(h, int(tight[3]) + m)
            own = mask[y1:y2, x1:x2]
            others = count[y1:y2, x1:x2] - own  # how many other instances cover each pixel
            if np.any(others[_dilate(own, config.touch_px)] > 0):
                rep.reasons.append("touches_other")
            frac = inst.occlusion_fraction()
            if frac is not None and frac > 0:
                rep.reasons.append("occluded")
        if not rep.reasons and mask is not None:
            passed[i] = mask
        reports.append(rep)
    return reports, passed


def select_objects(
    dataset: Dataset,
    classes: Iterable[str],
    *,
    unknown_classes: Iterable[str] = (),
    config: SelectionConfig = SelectionConfig(),
) -> Selection:
    """Judge every instance of the target and unknown classes and cut out the whole ones.

    Cut-outs keep the source pixels of the mask's tight box; ``key`` is ``"<image_id>:<annotation_id>"``.
    Images are loaded only when one of their instances passes; an unreadable image rejects its candidates
    with ``image_unreadable``. The order of the result follows the dataset (images, then instances).
    """
    targets = list(dict.fromkeys(classes))
    unknowns = [c for c in dict.fromkeys(unknown_classes) if c not in targets]
    roles = {c: "target" for c in targets} | {c: "unknown" for c in unknowns}
    reports: list[CandidateReport] = []
    kept_t: list[CutOut] = []
    kept_u: list[CutOut] = []
    for image in dataset.images:
        reps, passed = _judge_image(image, roles, config)
        reports.extend(reps)
        if not passed:
            continue
        try:
            rgb = load_rgb(image.path)
            if rgb.shape[:2] != (image.height, image.width):
                size = f"{rgb.shape[1]}x{rgb.shape[0]}"
                raise ImageError(f"{image.path}: image is {size}, annotations say {image.width}x{image.height}")
        except ImageError:
            ids = {image.instances[i].id for i in passed}
            for r in reps:
                if r.annotation_id in ids:
                    r.reasons.append("image_unreadable")
            continue
        for i, mask in passed.items():
            inst = image.instances[i]
            x1, y1, x2, y2 = (int(v) for v in mask_to_box(mask))  # type: ignore[misc]
            cut = CutOut(
                key=f"{image.image_id}:{inst.id}",
                category=inst.category,
                rgb=np.ascontiguousarray(rgb[y1:y2, x1:x2]),
                mask=np.ascontiguousarray(mask[y1:y2, x1:x2]),
                source={"image": image.file_name, "image_id": image.image_id, "annotation_id": inst.id},
                unknown=roles[inst.category] == "unknown",
            )
            (kept_u if cut.unknown else kept_t).append(cut)
    return Selection(targets=kept_t, unknowns=kept_u, reports=reports, config=config)


def synthetic_occluders(
    textures: Sequence[np.ndarray], rng: np.random.Generator, count: int, *, size: int = 200, prefix: str = "synthetic"
) -> list[CutOut]:
    """Occluders no model was trained on: random star-shaped blobs filled with texture crops.

    ``textures`` are RGB images (for example background crops); each blob takes a random crop of one.
    Used for the unknown-occluder scenario when the source holds no whole objects of other classes.
    """
    if not textures:
        raise ValueError("synthetic occluders need at least one texture image")
    out: list[CutOut] = []
    for k in range(count):
        tex = textures[int(rng.integers(len(textures)))]
        aspect = float(rng.uniform(0.5, 2.0))
        h = size
        w = max(16, int(round(size * aspect)))
        n = int(rng.integers(7, 14))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.55, 1.0, n)
        cx, cy = w / 2.0, h / 2.0
        pts = np.stack([cx + np.cos(angles) * radii * (w / 2 - 1), cy + np.sin(angles) * radii * (h / 2 - 1)], axis=1)
        mask = np.zeros((h, w), dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
        th, tw = tex.shape[:2]
        ch, cw = min(th, h), min(tw, w)
        y0 = int(rng.integers(0, th - ch + 1))
        x0 = int(rng.integers(0, tw - cw + 1))
        rgb = cv2.resize(tex[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)
        box = mask_to_box(mask.astype(bool))
        if box is None:
            continue
        bx1, by1, bx2, by2 = (int(v) for v in box)
        out.append(
            CutOut(
                key=f"{prefix}:{k}",
                category="unknown_occluder",
                rgb=np.ascontiguousarray(rgb[by1:by2, bx1:bx2]),
                mask=np.ascontiguousarray(mask[by1:by2, bx1:bx2].astype(bool)),
                source={"synthetic": True, "index": k},
                unknown=True,
            )
        )
    return out
