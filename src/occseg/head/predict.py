"""Masks from a learned head: its logits on the crop's cells, brought to image pixels (bilinear), inside the box."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from occseg.backbones.taps import FineLayer
from occseg.geometry.boxes import box_to_pixel_mask, resample_cells_to_image
from occseg.head.config import HEAD_REFINE
from occseg.head.inputs import HeadCrop, compnet_channels, head_crop, image_tensor
from occseg.head.network import MaskHead

#: logit of image pixels the head says nothing about (outside the crop window)
OUTSIDE = -10.0


def head_logits(head: MaskHead, crop: HeadCrop, *, flip: bool = False) -> torch.Tensor:
    """``(h, w)`` object logits on the crop's head cells (CPU float32). ``flip``: the mean of the logits of the
    crop's cells and of their left-right mirror (mirrored back), as the head saw flipped crops in training."""
    dev = next(head.parameters()).device
    cn = None if crop.compnet is None else crop.compnet[None].to(dev)
    inputs = [crop.coarse[None].to(dev), crop.fine[None].to(dev), crop.extra()[None].to(dev), cn]
    with torch.no_grad():
        out = head(*inputs)
        if flip:
            out = (out + head(*mirror_inputs(*inputs)).flip(-1)) / 2
    return out[0, 0].float().cpu()


def mirror_inputs(
    coarse: torch.Tensor, fine: torch.Tensor, extra: torch.Tensor, compnet: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The head's inputs of the left-right mirrored crop: every map flipped, the box-relative ``u`` (extra
    channel 3, compnet channel 4) negated."""
    sign = torch.ones(extra.shape[1], device=extra.device)
    sign[3] = -1.0
    extra = extra.flip(-1) * sign[:, None, None]
    if compnet is not None:
        csign = torch.ones(compnet.shape[1], device=compnet.device)
        csign[4] = -1.0
        compnet = compnet.flip(-1) * csign[:, None, None]
    return coarse.flip(-1), fine.flip(-1), extra, compnet


def image_logits(logits: torch.Tensor | np.ndarray, crop: HeadCrop) -> np.ndarray:
    """The head's logits at image pixels ``(H, W)``: bilinear from the cells; :data:`OUTSIDE` off the crop window
    and outside the box."""
    h, w = crop.image_size
    values = logits.numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits, np.float32)
    img = resample_cells_to_image(values.astype(np.float32), crop.window, crop.stride, h, w, fill=OUTSIDE)
    return np.where(box_to_pixel_mask(crop.box, h, w), img, OUTSIDE).astype(np.float32)


def head_mask(logits: torch.Tensor | np.ndarray, crop: HeadCrop, threshold: float = 0.0) -> np.ndarray:
    """The head's visible mask: boolean ``(H, W)``, image pixels whose logit exceeds ``threshold``, inside the box."""
    return image_logits(logits, crop) > threshold


def model_fine_layer(model) -> FineLayer | None:
    """The finer block a model's head reads (None: the model has no head)."""
    head = getattr(model, "mask_head", None)
    if head is None:
        return None
    s = head.settings
    return FineLayer(s.fine_layer, s.fine_channels, s.fine_stride)


def attach_head_inputs(model, rgb: np.ndarray, feats: Sequence, states: Sequence) -> None:
    """Give every object state of a scene its head inputs (``state.head``, a :class:`HeadCrop` without the
    CompNet's cells, which depend on the class decided later); nothing without a head. ``feats``: the objects'
    :class:`~occseg.features.crops.BoxFeatures` (with ``fine``), ``states`` their ObjectStates, in box order."""
    layer = model_fine_layer(model)
    if layer is None:
        return
    image = image_tensor(rgb)
    boxes = [f.box for f in feats]
    for k, (f, st) in enumerate(zip(feats, states)):
        others = boxes[:k] + boxes[k + 1 :]
        st.head = head_crop(image, f.box, others, f.window, f.features.cpu(), f.fine.cpu(), layer.stride)


def object_head_logits(model, state, category: str, mixture: int) -> torch.Tensor:
    """The head's ``(h, w)`` logits for an object whose class and mixture are decided (the CompNet's cells are
    added as inputs when the head takes them)."""
    crop = state.head
    if model.mask_head.settings.compnet_inputs:
        crop = replace(crop, compnet=compnet_channels(model, state, category, mixture))
    return head_logits(model.mask_head, crop)


def refine_prior(result, state, cfg):
    """What the image-resolution refinement starts from: ``(signed cell map, its stride, RefineConfig)``. With the
    head's logits in ``result.extra`` (a model with a head): those, at the head's stride, with the refinement's
    unary made of them alone (:data:`~occseg.head.config.HEAD_REFINE`), or the refinement switched off when the
    head's setting ``use`` is ``"head"``; else the CompNet's signed cell margins and ``cfg`` unchanged."""
    extra = result.extra if isinstance(result.extra, dict) else {}
    logits = extra.get("head_logits")
    if logits is None:
        signed = np.where(np.asarray(result.labels) == 1, result.margin, -np.asarray(result.margin))
        return signed, state.stride, cfg
    if extra.get("head_use") == "head":  # the head's mask is final: no refinement
        cfg = replace(cfg, enabled=False)
    return np.asarray(logits, np.float32), state.head.stride, replace(cfg, **HEAD_REFINE)


def head_visible(head: MaskHead, logits: np.ndarray, crop: HeadCrop, occluded: np.ndarray | None) -> np.ndarray:
    """The visible mask from the head's logits: above the head's threshold, inside the box, off ``occluded``."""
    mask = head_mask(logits, crop, head.settings.threshold)
    return mask & ~occluded if occluded is not None else mask
