"""Which of two overlapping objects is in front, from where the parts seen in their overlap belong.

Where two boxes meet, the image shows the object in front. Its parts there sit where they belong in its own
box (a head near the top of the front person's box) and usually not where they would belong in the other box
(the same head halfway down the box behind). With the model's part-position classifier
(:class:`~occseg.compnet.position.PositionModel`), every feature cell of either object's crop whose centre lies
in the boxes' intersection votes ``log p(bin of its position in box i | features) - log p(bin in box j |
features)``; the summed votes say who is in front. This needs no mask, so it does not suffer from masks that
spill onto the neighbouring object, which is what limits the pixel counts of the competition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from occseg.compnet.position import position_bins
from occseg.geometry.boxes import Box, overlapping_pairs


def _relative(points: torch.Tensor, box: Box) -> tuple[torch.Tensor, torch.Tensor]:
    x1, y1, x2, y2 = box
    return (points[:, 0] - x1) / (x2 - x1), (points[:, 1] - y1) / (y2 - y1)


def cell_votes(
    boxes: tuple[Box, Box], logp: torch.Tensor, centres, bins: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The votes of one crop's cells for the pair ``boxes = (box_i, box_j)``: ``(votes, inside)``, ``inside`` the
    ``(h * w,)`` mask of the cells whose centre lies in both boxes and ``votes`` their ``log p(bin in box i) -
    log p(bin in box j)`` (positive: i in front), in ``logp``'s device. ``logp``: ``(B, h, w)`` log-probabilities
    of the position classifier; ``centres``: ``(h, w, 2)`` cell centres in image pixels
    (:func:`~occseg.geometry.boxes.cell_centres_image`, an array or tensor)."""
    bi, bj = boxes
    x1, y1 = max(bi[0], bj[0]), max(bi[1], bj[1])
    x2, y2 = min(bi[2], bj[2]), min(bi[3], bj[3])
    pts = torch.as_tensor(centres).reshape(-1, 2)
    inside = (pts[:, 0] >= x1) & (pts[:, 0] < x2) & (pts[:, 1] >= y1) & (pts[:, 1] < y2)
    if x2 <= x1 or y2 <= y1 or not bool(inside.any()):
        return torch.zeros(0, device=logp.device), inside
    p = pts[inside]
    lp = logp.reshape(logp.shape[0], -1)[:, inside.to(logp.device)]
    li = position_bins(*_relative(p, bi), bins).to(lp.device)
    lj = position_bins(*_relative(p, bj), bins).to(lp.device)
    cols = torch.arange(lp.shape[1], device=lp.device)
    return lp[li, cols] - lp[lj, cols], inside


def pair_position_vote(
    boxes: tuple[Box, Box],
    cells: Sequence[tuple[torch.Tensor, torch.Tensor]],
    bins: tuple[int, int],
) -> tuple[float, int]:
    """``(summed vote, voting cells)`` for the pair ``boxes = (box_i, box_j)``; a positive vote puts i in front.

    ``cells``: per crop that sees the overlap (usually the two objects' own crops), ``(log_probs (B, h, w),
    centres (h, w, 2))``: the position classifier's log-probabilities and the cell centres in image pixels
    (:func:`~occseg.geometry.boxes.cell_centres_image`, an array or tensor).
    Only cells whose centre lies inside both boxes vote (:func:`cell_votes`).
    """
    total, count = 0.0, 0
    for logp, centres in cells:
        votes, _ = cell_votes(boxes, logp, centres, bins)
        if votes.numel():
            total += float(votes.sum())
            count += int(votes.numel())
    return total, count


def position_order(
    boxes: Sequence[Box],
    cells: Sequence[tuple[torch.Tensor, torch.Tensor]],
    bins: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The pairwise order of objects whose boxes overlap, from :func:`pair_position_vote` on the two objects'
    own crops: ``(order, confidence)``, ``order[i, j] = +1`` when i is in front of j (antisymmetric, 0 where the
    boxes do not overlap or the vote is exactly 0); ``confidence`` the mean vote per cell mapped to ``[0, 1)``
    by ``m / (1 + m)`` (symmetric)."""
    n = len(boxes)
    if len(cells) != n:
        raise ValueError(f"{n} boxes but {len(cells)} crops of position log-probabilities")
    order = np.zeros((n, n), dtype=np.int8)
    conf = np.zeros((n, n), dtype=np.float64)
    for i, j in overlapping_pairs(boxes):  # only cells inside both boxes vote: no other pair has a vote
        vote, count = pair_position_vote((boxes[i], boxes[j]), (cells[i], cells[j]), bins)
        if count == 0 or vote == 0:
            continue
        order[i, j] = 1 if vote > 0 else -1
        order[j, i] = -order[i, j]
        m = abs(vote) / count
        conf[i, j] = conf[j, i] = m / (1 + m)
    return order, conf
