"""Test-time training of the part-position classifier on the images about to be predicted.

The classifier that decides who is in front (:mod:`occseg.reasoning.position_order`) learned from the training
boxes which parts show where in a box. The boxes given with the images to predict teach the same thing about
the objects in them, with no annotation beyond the boxes: a cell that lies in one box only shows that object (or
its background) at a known position in its box, and a cell in no box shows no object at all. Cells where two
boxes meet get no label: which object shows there is what the vote is to decide. Refitted on these cells, from
the trained weights, the classifier knows how the objects of this data look in each part of their boxes. That
helps where the same objects come back in many images (on the Occlusion Challenge, whose test splits paste each
source person into about 20 images, NOD's order on the occluded pairs rose from 67.9 to 79.4 % and from 72.5 to
76.4 %), and it harms on a few photos of distinct objects (the COCOA sample: 79.2 to 70.8 %), so it is an option
(``occseg predict --adapt-order``), not the default (docs/results.md, "The order classifier refitted to the data it
predicts").

This costs a second backbone pass per object (the cells' features are not kept between the two passes, so a
data set of any size fits in memory).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from occseg.compnet.model import CompNetModel
from occseg.compnet.position import PositionModel, adapt_position_model, box_cell_labels, position_inputs
from occseg.data.annotation import AnnotatedImage
from occseg.features.crops import extract_box_features
from occseg.geometry.boxes import Box, cell_centres_image
from occseg.inference.scene import model_crop_config

log = logging.getLogger(__name__)

#: the most cells the classifier is refitted on (a seeded uniform subset beyond); at most twice as many are held
#: while the data is read (512 concepts: about 0.8 GB), whatever the data set's size
MAX_CELLS = 200_000
#: fewer labelled cells than this leave the classifier as trained
MIN_CELLS = 500


def adapt_order_classifier(
    model: CompNetModel,
    backbone,
    images: Sequence[tuple[AnnotatedImage, Sequence[Box]]],
    *,
    device: str | torch.device | None = None,
    max_cells: int = MAX_CELLS,
    min_cells: int = MIN_CELLS,
    seed: int = 0,
    progress: bool = True,
) -> PositionModel:
    """The model's part-position classifier refitted to the cells of ``images`` (each an image and the boxes of
    its objects to predict, ``x1, y1, x2, y2``), labelled by :func:`~occseg.compnet.position.box_cell_labels`;
    the classifier unchanged, with a warning, when the images give fewer than ``min_cells`` labelled cells."""
    model.require_position(adapt=True)
    s = model.settings
    crop_cfg = model_crop_config(model, None, device or backbone.device)
    concepts = model.concepts.to(device or backbone.device)
    gen = torch.Generator().manual_seed(seed)
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    keys: list[torch.Tensor] = []  # a uniform random key per cell: the cells kept are those with the smallest keys
    n = held = 0
    for im, boxes in tqdm(images, desc="adapt order", disable=not progress, leave=False, dynamic_ncols=True):
        if not boxes:
            continue
        for k, bf in enumerate(extract_box_features(backbone, im.load_rgb(), boxes, crop_cfg, device=device)):
            x = position_inputs(bf.features, concepts.to(bf.features.device), s.kappa)
            centres = cell_centres_image(bf.window, s.stride, tuple(x.shape[1:]))
            y = box_cell_labels(torch.as_tensor(np.asarray(centres)), boxes, k, model.position.bins)
            keep = y >= 0
            xs.append(x.reshape(x.shape[0], -1).T[keep.to(x.device)].cpu())
            ys.append(y[keep])
            keys.append(torch.rand(len(ys[-1]), generator=gen))
            n += len(ys[-1])
            held += len(ys[-1])
        if held > 2 * max_cells:  # memory stays bounded: only the cells that can still be chosen are held
            xs, ys, keys = _smallest_keys(xs, ys, keys, max_cells)
            held = max_cells
    if n < min_cells:
        log.warning("only %d labelled cells in the data: the part-position classifier is left as trained", n)
        return model.position
    if held > max_cells:
        xs, ys, keys = _smallest_keys(xs, ys, keys, max_cells)
    x, y = torch.cat(xs), torch.cat(ys)
    log.info("part-position classifier refitted to %d cells of %d images", len(y), len(images))
    return adapt_position_model(model.position, x, y).to(model.position.weight.device)


def _smallest_keys(
    xs: list[torch.Tensor], ys: list[torch.Tensor], keys: list[torch.Tensor], k: int
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """The ``k`` cells with the smallest keys (a uniform sample of all cells seen), in the order they came."""
    key = torch.cat(keys)
    idx = torch.topk(key, k, largest=False).indices.sort().values
    return [torch.cat(xs)[idx]], [torch.cat(ys)[idx]], [key[idx]]
