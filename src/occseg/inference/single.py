"""Per-object inference with a CompositionalNet, given the object's box (docs/method.md §A.5).

:func:`prepare_object` turns one backbone pass of a box crop into every likelihood term the later steps
need (per class and mixture, on the class's grid). Classification, per-cell labelling, masks and the
occlusion reasoning all reuse those terms: the backbone never runs twice for one object.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from occseg.choices import HiddenPart
from occseg.compnet.model import CompNetModel
from occseg.compnet.scoring import (
    align_offset,
    box_mask_on_grid,
    cell_terms,
    from_grid,
    log_mix,
    log_mix_flat,
    mixture_scores,
    outlier_loglik,
    rigid_hole_fill,
    to_grid,
)
from occseg.compnet.vmf import concept_distribution, log_activations
from occseg.geometry.boxes import Box, CropWindow, box_to_pixel_mask, mask_to_box, resample_cells_to_image
from occseg.head.predict import head_visible, object_head_logits
from occseg.inference.types import ClassTerms, ObjectResult, ObjectState

OCCLUDER, OBJECT, CONTEXT = 0, 1, 2

# the object types live in occseg.inference.types; importing them from here keeps working
__all__ = [
    "CONTEXT",
    "OBJECT",
    "OCCLUDER",
    "ClassTerms",
    "ObjectResult",
    "ObjectState",
    "classify",
    "complete_amodal_box",
    "finish_object",
    "occlusion_cells",
    "prepare_object",
]


def _box_cells(box: Box, win: CropWindow, stride: int) -> tuple[float, float, float, float]:
    x1, y1 = win.image_to_crop(box[0], box[1])
    x2, y2 = win.image_to_crop(box[2], box[3])
    return x1 / stride, y1 / stride, x2 / stride, y2 / stride


def prepare_object(
    model: CompNetModel,
    features: torch.Tensor,
    box: Box,
    window: CropWindow,
    image_size: tuple[int, int],
    *,
    classes: list[str] | None = None,
    per_image_context: bool | None = None,
) -> ObjectState:
    """All class terms of one object from its crop features ``(C, h, w)``."""
    s = model.settings
    dev = model.device
    feats = features.to(dev, torch.float32)
    la = log_activations(feats, model.concepts, s.kappa)  # (K, h, w)
    h, w = la.shape[1:]
    bc = _box_cells(box, window, s.stride)
    use_ring = (s.context == "per_image") if per_image_context is None else per_image_context
    # each cell's distribution over the concepts, for the ring context and the part-position classifier
    dist = concept_distribution(la) if use_ring or model.position is not None else None
    ring_dist = None
    if use_ring:
        inside = box_mask_on_grid((h, w), (0, 0), bc, device=dev)
        if bool((~inside).any()):
            ring_dist = dist[:, ~inside].mean(1)  # (K,)
    terms: dict[str, ClassTerms] = {}
    for name in classes or s.classes:
        cm = model.classes[name]
        grid = cm.grid
        off = align_offset(((bc[1] + bc[3]) / 2, (bc[0] + bc[2]) / 2), grid)
        la_g, valid = to_grid(la, off, grid)
        in_box = box_mask_on_grid(grid, off, bc).to(dev) & valid
        log_fg = log_mix(cm.alpha, la_g)
        log_ctx_model = log_mix(cm.chi, la_g)
        log_ctx = log_ctx_model
        if ring_dist is not None:
            log_ctx = torch.maximum(log_ctx, log_mix_flat(ring_dist[None], la_g))
        terms[name] = ClassTerms(
            offset=off,
            valid=valid,
            in_box=in_box,
            log_fg=log_fg,
            log_ctx=log_ctx,
            log_ctx_model=log_ctx_model,
            log_out=outlier_loglik(model.clutter, la_g),
            log_act=la_g,
        )
    position = None if model.position is None else model.position.log_probs(dist)
    cells = (h, w)
    return ObjectState(box, window, cells, s.stride, image_size, terms, position=position)


def occlusion_cells(state: ObjectState, occluded_pixels: np.ndarray | None, grid_of: str) -> torch.Tensor | None:
    """An image-size occlusion prior as a boolean map on a class grid: a cell is occluded when more than
    half of its pixels are."""
    if occluded_pixels is None or not occluded_pixels.any():
        return None
    import cv2

    wx1, wy1, wx2, wy2 = state.window.window
    h, w = state.crop_cells
    region = occluded_pixels[wy1:wy2, wx1:wx2].astype(np.float32)
    # crop cells cover (16 / scale) image px each; the crop may extend past the window (stride rounding)
    cell_px = state.stride / state.window.scale
    full_h, full_w = round(h * cell_px), round(w * cell_px)
    canvas = np.zeros((max(full_h, region.shape[0]), max(full_w, region.shape[1])), np.float32)
    canvas[: region.shape[0], : region.shape[1]] = region
    canvas = canvas[:full_h, :full_w]
    frac = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    cells = torch.from_numpy(frac > 0.5)
    t = state.terms[grid_of]
    g, _ = to_grid(cells.to(t.valid.device), t.offset, t.valid.shape)
    return g


def classify(
    model: CompNetModel,
    state: ObjectState,
    *,
    occluded: dict[str, torch.Tensor | None] | None = None,
    given_label: str | None = None,
) -> tuple[str, int, float, dict[str, float]]:
    """Class, mixture, confidence and per-class scores. With ``given_label`` only that class is scored."""
    s = model.settings
    names = [given_label] if given_label else list(state.terms)
    scores: dict[str, float] = {}
    best_mix: dict[str, int] = {}
    for name in names:
        if name not in state.terms:
            raise ValueError(f"class {name!r} is not in the model (classes: {', '.join(s.classes)})")
        t = state.terms[name]
        cm = model.classes[name]
        occ = (occluded or {}).get(name)
        args = (t.log_fg, t.log_ctx_model, cm.prior_fg, t.log_out)
        kw = dict(omega=s.omega, outlier_weight=s.outlier_weight, occluded=occ)
        # the mixture explains the whole crop (the paper's sum over every covered cell) ...
        total = mixture_scores(*args, t.valid, **kw)
        m = int(torch.argmax(total))
        best_mix[name] = m
        # ... while classes compete on the box's cells, per cell, so wider class grids get no advantage
        if s.class_score == "box_mean":
            scores[name] = float(mixture_scores(*args, t.in_box, normalize=True, **kw).max())
        else:
            scores[name] = float(total[m])
    cls = max(scores, key=scores.__getitem__)
    vals = torch.tensor(list(scores.values()))
    per_cell = vals if s.class_score == "box_mean" else vals / max(1.0, float(state.terms[cls].valid.sum()))
    conf = float(torch.softmax(per_cell * 4.0, 0)[list(scores).index(cls)]) if len(vals) > 1 else 1.0
    return cls, best_mix[cls], conf, scores


def label_cells(
    model: CompNetModel, state: ObjectState, category: str, mixture: int, occluded: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-cell labels (0 occluder, 1 object, 2 context), margins, object log-scores and the amodal flag,
    all on the crop's own cells ``(h, w)``."""
    s = model.settings
    t = state.terms[category]
    cm = model.classes[category]
    prior = cm.prior_fg[mixture]
    log_ctx = t.log_ctx[mixture] if s.test_ring_context else t.log_ctx_model[mixture]
    terms = cell_terms(t.log_fg[mixture], log_ctx, prior, t.log_out, outlier_weight=s.outlier_weight)
    terms[0] += s.fg_bias
    top2 = terms.topk(2, dim=0)
    winner = top2.indices[0]
    margin = top2.values[0] - top2.values[1]
    labels = torch.where(winner == 0, OBJECT, torch.where(winner == 1, CONTEXT, OCCLUDER))
    if occluded is not None:
        labels = torch.where(occluded & (labels == OBJECT), OCCLUDER, labels)
    fg = rigid_hole_fill(labels == OBJECT) & t.in_box
    if occluded is not None:
        fg = fg & ~occluded
    labels = torch.where(fg, OBJECT, torch.where(labels == OBJECT, CONTEXT, labels))
    # amodal: occluded cells inside the shape prior count as the object's hidden part
    amodal = fg | ((labels == OCCLUDER) & (prior > s.amodal_prior_threshold) & t.in_box)
    hw = state.crop_cells
    return (
        from_grid(labels, t.offset, hw, fill=CONTEXT),
        from_grid(margin, t.offset, hw, fill=1.0),
        from_grid(terms[0], t.offset, hw, fill=-1e4),
        from_grid(amodal, t.offset, hw, fill=False),
    )


def masks_from_cells(
    state: ObjectState,
    positive: torch.Tensor,
    margin: torch.Tensor,
    *,
    restrict: np.ndarray | None = None,
    smooth: float = 0.0,
) -> np.ndarray:
    """Image-size boolean mask from cell decisions: the signed margin (+ inside, - outside), optionally smoothed
    over neighbouring cells (Gaussian, ``smooth`` cells), is resampled bilinearly to image pixels and
    thresholded at 0, which removes the 16-px cell staircase."""
    import cv2

    signed = torch.where(positive, margin, -margin).clamp(-10, 10).float().cpu().numpy()
    if smooth > 0:
        signed = cv2.GaussianBlur(signed, (0, 0), smooth, borderType=cv2.BORDER_REPLICATE)
    h_img, w_img = state.image_size
    img = resample_cells_to_image(signed, state.window, state.stride, h_img, w_img, fill=-1.0)
    mask = img > 0
    if restrict is not None:
        mask &= ~restrict
    return mask


def finish_object(
    model: CompNetModel,
    state: ObjectState,
    category: str,
    mixture: int,
    confidence: float,
    scores: dict[str, float],
    *,
    occluded_pixels: np.ndarray | None = None,
    hidden: HiddenPart = "auto",
) -> ObjectResult:
    """Labels and masks of one object for a chosen class and mixture (optionally with an occlusion prior).
    ``hidden``: its hidden part (:data:`~occseg.choices.HiddenPart`; without a head ``shape`` is ``occluder``);
    ``front`` (``auto`` with a head) keeps the cells' amodal shape as ``extra["shape"]`` for
    :mod:`occseg.reasoning.hidden`."""
    occ = occlusion_cells(state, occluded_pixels, category)
    labels, margin, fg_score, amodal_cells = label_cells(model, state, category, mixture, occ)
    inside = box_to_pixel_mask(state.completed_box or state.box, *state.image_size)
    sm = model.settings.smooth_cells
    cells_visible = masks_from_cells(state, labels == OBJECT, margin, restrict=occluded_pixels, smooth=sm) & inside
    visible = cells_visible
    extra = {}
    if state.head is not None:  # the head's mask replaces the cells' visible mask (occseg.head)
        extra["head_logits"] = object_head_logits(model, state, category, mixture).numpy()
        extra["head_use"] = model.mask_head.settings.use
        visible = head_visible(model.mask_head, extra["head_logits"], state.head, occluded_pixels) & inside
    # "occluder": the cells labelled occluder inside the shape prior, i.e. the cells' amodal mask less the cells' own
    # visible mask (less the head's, "shape", the coarse cells' rim outside the head's finer outline is "hidden")
    if hidden == "auto":
        hidden = "agree" if state.head is not None else "occluder"
    shape = masks_from_cells(state, amodal_cells, margin, smooth=sm) & inside
    amodal = (shape & ~(visible if hidden == "shape" else cells_visible)) | visible
    if hidden in ("front", "agree"):
        extra["shape"] = shape
    abox = mask_to_box(amodal) or state.box
    return ObjectResult(
        category=category,
        confidence=confidence,
        class_scores=scores,
        mixture=mixture,
        visible=visible,
        amodal=amodal,
        labels=labels.cpu().numpy(),
        margin=margin.float().cpu().numpy(),
        fg_score=fg_score.float().cpu().numpy(),
        box=state.box,
        amodal_box=abox,
        extra=extra,
    )


def complete_amodal_box(model: CompNetModel, state: ObjectState, category: str, scales=(1.0, 0.8, 0.6)) -> Box:
    """Amodal box from a visible (partial) box: the crop's box cells are slid over every mixture's spatial
    model, at a few relative scales, all offsets scored at once; the best placement's model box, mapped back
    to the image, is the amodal box. The visible box always stays inside it."""
    s = model.settings
    t = state.terms[category]
    cm = model.classes[category]
    gh, gw = cm.grid
    ring = s.ring
    rows = t.in_box.any(1).nonzero().squeeze(1)
    cols = t.in_box.any(0).nonzero().squeeze(1)
    if rows.numel() == 0 or cols.numel() == 0:
        return state.box
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    vis = t.log_act[:, r0:r1, c0:c1]  # (K, hb, wb) the visible box on the grid
    pf = cm.prior_fg.clamp(1e-6, 1 - 1e-6)
    fused = (1 - s.omega) * pf[..., None] * cm.alpha + s.omega * (1 - pf[..., None]) * cm.chi  # (M, H, W, K)
    box_r0, box_r1 = ring, gh - ring  # the model's box rows
    best = (-float("inf"), 1.0, 0, 0)
    for sc in scales:
        hb = max(1, round((r1 - r0) * sc))
        wb = max(1, round((c1 - c0) * sc))
        if hb > box_r1 - box_r0 or wb > gw:
            continue
        v = F.interpolate(vis[None], size=(hb, wb), mode="bilinear", align_corners=False)[0]
        shift = v.max(0).values
        lin = torch.exp(v - shift)
        lout = outlier_loglik(model.clutter, v) + np.log(s.outlier_weight)
        # every placement of the (hb, wb) window inside the model's box rows
        win = fused[:, box_r0:box_r1].unfold(1, hb, 1).unfold(2, wb, 1)  # (M, oy, ox, K, hb, wb)
        ell = torch.log(torch.einsum("myxkhw,khw->myxhw", win, lin).clamp_min(1e-12)) + shift
        score = (ell - lout).clamp_min(0).flatten(-2).mean(-1)  # (M, oy, ox)
        val, idx = score.flatten().max(0)
        if float(val) > best[0]:
            _, oy, ox = np.unravel_index(int(idx), score.shape)
            best = (float(val), sc, int(oy), int(ox))
    _, sc, oy, ox = best
    # model box (rows box_r0..box_r1, the class's mean box columns) relative to the placed visible window
    hb = max(1, round((r1 - r0) * sc))
    wb = max(1, round((c1 - c0) * sc))
    cell_h = (state.box[3] - state.box[1]) / hb  # image px per model cell at this scale
    cell_w = (state.box[2] - state.box[0]) / wb
    top = state.box[1] - oy * cell_h
    bottom = top + (box_r1 - box_r0) * cell_h
    in_box_cols = (cm.prior_fg.mean(0)[box_r0:box_r1] > 0.05).any(0).nonzero().squeeze(1)
    bc0 = int(in_box_cols[0]) if in_box_cols.numel() else ox
    bc1 = int(in_box_cols[-1]) + 1 if in_box_cols.numel() else ox + wb
    left = state.box[0] - (ox - bc0) * cell_w
    right = state.box[0] + (bc1 - ox) * cell_w
    h_img, w_img = state.image_size
    x1 = max(0.0, min(left, state.box[0]))
    y1 = max(0.0, min(top, state.box[1]))
    x2 = min(float(w_img), max(right, state.box[2]))
    y2 = min(float(h_img), max(bottom, state.box[3]))
    return (x1, y1, x2, y2)
