"""Refinement of one object's masks at image resolution, guided by the image (the entry point).

The CompositionalNet decides per 16-px feature cell; its masks follow the cell staircase and its weak
box-supervised labels. Here the decision is remade per pixel, inside the padded box only, at a working
resolution where the box is at most ``RefineConfig.work_height`` px high:

1. object log-odds per pixel = the model's signed cell margin (bilinear from the cells; + object, - not)
   + an inscribed-ellipse shape prior + a bias; pixels outside the box are never object;
2. colour (default ``colour="gmm"``): object / background colour models (RGB Gaussian mixtures, or Lab
   histograms) weighted by the current object probability - so the model's confident object cells seed the
   object model, its context cells and the ring around the box the background model - their
   log-likelihood ratio added to the log-odds, re-estimated ``colour_iters`` times; or
   (``colour="grabcut"``) OpenCV GrabCut from a trimap of the log-odds (the most confident object pixels and
   the ellipse core definite object, outside the box definite background);
3. optional mean-field rounds that use the guided filter as an edge-aware pairwise kernel (a dense-CRF-like
   step); then edge-aware upsampling of the object probability with the guided filter (the image as guide);
4. back to image pixels (bilinear), threshold 0.5, holes filled, specks dropped.

Occlusion reasoning is respected: ``exclude`` pixels (lost to another object, or an occluder) are never in
the visible mask, nor in its colour model. Only the visible mask is refined; the amodal mask is
``refined visible | (original amodal & ~original visible) | (original amodal & exclude)``: the hidden part
the model (and the reasoning) already had is kept as it was, so ``amodal ⊇ visible`` always.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy import ndimage

from occseg.geometry.boxes import Box, CropWindow, box_to_pixel_mask, resample_cells_at
from occseg.head.predict import refine_prior
from occseg.refine.colour import (
    colour_index,
    gmm_llr,
    grabcut_mask,
    histogram_llr,
    quadratic_features,
    trimap_from_logit,
)
from occseg.refine.config import RefineConfig
from occseg.refine.guided import guided_filter

if TYPE_CHECKING:
    from occseg.inference.types import ObjectResult, ObjectState

OBJECT = 1  # the CompositionalNet's per-cell object label (occseg.inference.single.OBJECT)
_NEVER = -30.0  # log-odds of pixels that cannot be object (outside the box)


@dataclass(frozen=True)
class WorkGrid:
    """The image region ``(x1, y1, x2, y2)`` (integer px) that is refined, and its working size ``(h, w)``."""

    region: tuple[int, int, int, int]
    size: tuple[int, int]

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (continuous, pixel edges at integers) of the working pixels' centres: ``xs, ys``."""
        x1, y1, x2, y2 = self.region
        h, w = self.size
        xs = x1 + (np.arange(w, dtype=np.float64) + 0.5) * (x2 - x1) / w
        ys = y1 + (np.arange(h, dtype=np.float64) + 0.5) * (y2 - y1) / h
        return xs, ys


def work_grid(box: Box, height: int, width: int, cfg: RefineConfig) -> WorkGrid:
    """The box padded by ``cfg.region_pad`` (clipped to the image), scaled so the box is at most
    ``cfg.work_height`` px high."""
    bx1, by1, bx2, by2 = box
    bw, bh = bx2 - bx1, by2 - by1
    x1 = max(0, math.floor(bx1 - cfg.region_pad * bw))
    y1 = max(0, math.floor(by1 - cfg.region_pad * bh))
    x2 = min(width, math.ceil(bx2 + cfg.region_pad * bw))
    y2 = min(height, math.ceil(by2 + cfg.region_pad * bh))
    s = min(1.0, cfg.work_height / max(bh, 1e-6))
    return WorkGrid(region=(x1, y1, x2, y2), size=(max(2, round((y2 - y1) * s)), max(2, round((x2 - x1) * s))))


def cells_to_grid(values: np.ndarray, window: CropWindow, stride: int, grid: WorkGrid) -> np.ndarray:
    """Bilinearly resample a map on a crop's feature cells ``(h, w)`` to the working grid's cell centres (edge
    cells replicated beyond the crop)."""
    xs, ys = grid.centres()
    return resample_cells_at(values, window, stride, xs, ys)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))).astype(np.float32)


def object_logodds(
    signed_cells: np.ndarray, box: Box, window: CropWindow, stride: int, grid: WorkGrid, cfg: RefineConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unary object log-odds on the working grid from the model's signed cell margins and the ellipse prior.

    Returns ``(logodds, in_box, r2)``: ``r2`` is the squared normalised radius of the inscribed ellipse."""
    xs, ys = grid.centres()
    in_box = ((ys >= box[1]) & (ys < box[3]))[:, None] & ((xs >= box[0]) & (xs < box[2]))[None, :]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = max((box[2] - box[0]) / 2, 1e-6), max((box[3] - box[1]) / 2, 1e-6)
    r2 = (((xs - cx) / rx) ** 2)[None, :] + (((ys - cy) / ry) ** 2)[:, None]
    score = cells_to_grid(np.clip(signed_cells, -cfg.score_clip, cfg.score_clip), window, stride, grid)
    logit = cfg.score_weight * score + cfg.shape_weight * (1.0 - r2) + cfg.bias
    logit = np.where(in_box, logit, _NEVER).astype(np.float32)
    return logit, in_box, r2.astype(np.float32)


def refine_probability(
    image: np.ndarray,
    logit: np.ndarray,
    allowed: np.ndarray,
    r2: np.ndarray,
    cfg: RefineConfig,
    *,
    cell_px: float,
) -> np.ndarray:
    """Object probability on the working grid (see the module docstring, step 2 and the mean-field rounds).

    ``image``: the working-grid RGB uint8 region; ``logit``: the unary log-odds; ``allowed``: pixels that may
    be object (in the box and not excluded); ``cell_px``: the size of one feature cell in working pixels."""
    unary = np.where(allowed, logit, _NEVER).astype(np.float32)
    prob = _sigmoid(unary)
    if cfg.colour in ("histogram", "gmm") and cfg.colour_weight > 0:
        idx = colour_index(image, cfg.colour_bins) if cfg.colour == "histogram" else None
        feats = quadratic_features(image) if cfg.colour == "gmm" else None
        u0 = unary
        for _ in range(cfg.colour_iters):
            if idx is not None:
                llr = histogram_llr(idx, prob, 1.0 - prob, cfg.colour_bins)
            else:
                llr = gmm_llr(
                    image,
                    prob,
                    1.0 - prob,
                    components=cfg.gmm_components,
                    max_samples=cfg.gmm_samples,
                    feats=feats,
                    where=allowed,
                )
            unary = np.where(allowed, u0 + cfg.colour_weight * llr, _NEVER).astype(np.float32)
            prob = _sigmoid(unary)
    elif cfg.colour == "grabcut":
        tri = trimap_from_logit(
            unary,
            allowed,
            fg_share=cfg.seed_fg,
            bg_share=cfg.seed_bg,
            definite_fg=(r2 <= cfg.core) & allowed if cfg.core > 0 else None,
        )
        cut = grabcut_mask(image, tri, cfg.grabcut_iters) & allowed
        unary = np.where(cut, 2.0, -2.0).astype(np.float32)  # for the mean-field rounds, if any
        unary[~allowed] = _NEVER
        prob = cut.astype(np.float32)
    radius = max(1, round(cfg.guided_radius * cell_px))
    guide = image.astype(np.float32) / 255.0
    for _ in range(cfg.mean_field_iters):
        msg = guided_filter(guide, prob, radius, cfg.guided_eps)
        prob = _sigmoid(unary + cfg.mean_field_weight * (2.0 * msg - 1.0))
    return np.where(allowed, prob, 0.0).astype(np.float32)


def _clean(mask: np.ndarray, cfg: RefineConfig) -> np.ndarray:
    if cfg.fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    if cfg.min_component > 0 and mask.any():
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        if n > 2:
            areas = stats[1:, cv2.CC_STAT_AREA]
            keep = np.concatenate([[False], areas >= cfg.min_component * areas.max()])
            mask = keep[lab]
    return mask


def refine_mask(
    image: np.ndarray,
    box: Box,
    signed_cells: np.ndarray,
    window: CropWindow,
    stride: int,
    cfg: RefineConfig,
    *,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """The refined visible mask of one object as a boolean image-size array (inside ``box``, never on
    ``exclude``).

    ``signed_cells``: ``(h, w)`` on the crop's feature cells, the model's margin with + for object cells and
    - for the others; ``exclude``: image-size boolean mask of pixels that are not this object's visible part
    (they are also kept out of the object's colour model).
    """
    height, width = image.shape[:2]
    grid = work_grid(box, height, width, cfg)
    x1, y1, x2, y2 = grid.region
    h, w = grid.size
    rh, rw = y2 - y1, x2 - x1
    region = image[y1:y2, x1:x2]
    small = cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != (rh, rw) else region
    logit, in_box, r2 = object_logodds(signed_cells, box, window, stride, grid, cfg)
    allowed = in_box
    if exclude is not None and exclude[y1:y2, x1:x2].any():
        ex = exclude[y1:y2, x1:x2].astype(np.float32)
        if (h, w) != ex.shape:
            ex = cv2.resize(ex, (w, h), interpolation=cv2.INTER_AREA)
        allowed = in_box & (ex < 0.5)
    cell_region_px = stride / window.scale  # one feature cell in image pixels
    prob = refine_probability(np.ascontiguousarray(small), logit, allowed, r2, cfg, cell_px=cell_region_px * w / rw)
    if cfg.guided:
        # edge-aware upsampling: bilinear to the guide resolution, then the guided filter with the image there
        s = min(1.0, cfg.guide_height / max(box[3] - box[1], 1e-6))
        fh, fw = max(2, round(rh * s)), max(2, round(rw * s))
        fine = cv2.resize(region, (fw, fh), interpolation=cv2.INTER_AREA) if (fh, fw) != (rh, rw) else region
        prob = cv2.resize(prob, (fw, fh), interpolation=cv2.INTER_LINEAR) if (fh, fw) != (h, w) else prob
        radius = max(1, round(cfg.guided_radius * cell_region_px * fw / rw))
        prob = guided_filter(fine.astype(np.float32) / 255.0, prob, radius, cfg.guided_eps)
    if prob.shape != (rh, rw):
        prob = cv2.resize(prob, (rw, rh), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((height, width), dtype=bool)
    out[y1:y2, x1:x2] = _clean(prob > 0.5, cfg)
    out &= box_to_pixel_mask(box, height, width)
    if exclude is not None:
        out &= ~exclude
    return out


def refine_object(
    image: np.ndarray,
    result: ObjectResult,
    state: ObjectState,
    cfg: RefineConfig | None = None,
    *,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Refined ``(visible, amodal)`` boolean image masks of one object.

    ``image``: the ``(H, W, 3)`` uint8 RGB image the object was predicted on; ``result``: its
    :class:`~occseg.inference.single.ObjectResult` (``labels`` / ``margin`` on the crop cells, ``visible`` /
    ``amodal`` image masks); ``state``: its :class:`~occseg.inference.single.ObjectState` (``box``,
    ``window``, ``stride``, ``image_size``); ``exclude``: optional image-size boolean mask of pixels the
    occlusion reasoning gave to other objects or to an occluder - never in the visible mask.

    The visible mask stays inside the given box (``state.box``). When the refinement finds no object pixel
    at all, the model's own masks are returned (with the exclusion applied). With ``cfg.enabled`` false the
    model's masks are returned unchanged (apart from the exclusion).
    """
    cfg = cfg or RefineConfig()
    h, w = state.image_size
    if image.shape[:2] != (h, w):
        raise ValueError(
            f"refine_object: image is {image.shape[1]}x{image.shape[0]} but the object was predicted on a {w}x{h} image"
        )
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"refine_object: need an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != (h, w):
            raise ValueError(f"refine_object: exclude mask is {exclude.shape}, the image is {(h, w)}")
    orig_vis = np.asarray(result.visible, dtype=bool)
    orig_amodal = np.asarray(result.amodal, dtype=bool)
    hidden = orig_amodal & ~orig_vis
    signed, stride, cfg = refine_prior(result, state, cfg)  # the mask head's logits when the model has one
    if not cfg.enabled:
        vis = orig_vis & ~exclude if exclude is not None else orig_vis.copy()
        return vis, vis | orig_amodal
    vis = refine_mask(image, state.box, signed, state.window, stride, cfg, exclude=exclude)
    if not vis.any():
        vis = orig_vis & ~exclude if exclude is not None else orig_vis.copy()
    amodal = vis | hidden
    if exclude is not None:
        amodal |= orig_amodal & exclude
    return vis, amodal
