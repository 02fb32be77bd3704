"""Box-supervised mask losses (BoxInst, Tian et al., CVPR 2021): the box projection loss and the colour-affinity
pairwise loss, on batches of per-cell logits with a mask of the valid (non-padding) cells."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(x: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``1 - 2 sum(x t) / (sum(x^2) + sum(t^2) + eps)`` over the last dimension, per row ``(B,)``."""
    inter = (x * target).sum(-1)
    union = (x * x).sum(-1) + (target * target).sum(-1) + eps
    return 1.0 - 2.0 * inter / union


def projection_loss(logits: torch.Tensor, box: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the dice losses of the mask's max-projections onto the x and y axes against the
    box's (BoxInst's projection term; BBTP's multiple-instance view). ``logits``, ``box`` (0/1), ``valid``
    (0/1): ``(B, 1, h, w)``. A mask that fills every row and column of its box has loss 0."""
    return projection_rows(logits, box, valid).mean()


def projection_rows(logits: torch.Tensor, box: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(B,)``: each crop's projection loss (:func:`projection_loss` is their mean)."""
    p = torch.sigmoid(logits) * valid
    b = box * valid
    lx = dice_loss(p.amax(2).flatten(1), b.amax(2).flatten(1))
    ly = dice_loss(p.amax(3).flatten(1), b.amax(3).flatten(1))
    return lx + ly


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[..., i, j] = x[..., i + dy, j + dx]`` (0 beyond the map)."""
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    padded = F.pad(x, (p, p, p, p))
    return padded[..., p + dy : p + dy + h, p + dx : p + dx + w]


def neighbour_offsets(dilation: int) -> list[tuple[int, int]]:
    """The 8 neighbours at ``dilation`` cells (a dilated 3x3 neighbourhood without its centre)."""
    d = dilation
    return [(dy * d, dx * d) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def colour_similarity(lab: torch.Tensor, dilation: int) -> torch.Tensor:
    """``(B, 8, h, w)``: ``exp(-||c_i - c_j|| / 2)`` between each cell's Lab colour ``(B, 3, h, w)`` and its 8
    dilated neighbours' (BoxInst's colour affinity; 0 where the neighbour lies beyond the map)."""
    out = []
    for dy, dx in neighbour_offsets(dilation):
        other = _shift(lab, dy, dx)
        inside = _shift(torch.ones_like(lab[:, :1]), dy, dx)
        out.append(torch.exp(-torch.linalg.vector_norm(lab - other, dim=1, keepdim=True) * 0.5) * inside)
    return torch.cat(out, 1)


def pairwise_loss(
    logits: torch.Tensor,
    similarity: torch.Tensor,
    weight: torch.Tensor,
    valid: torch.Tensor,
    *,
    dilation: int,
    tau: float,
) -> torch.Tensor:
    """BoxInst's pairwise term: ``-log P(y_i = y_j)`` with ``P = p_i p_j + (1 - p_i)(1 - p_j)`` over the pairs of a
    cell ``i`` where ``weight`` ``(B, 1, h, w)`` is 1 (inside its box) and a ``valid`` (not padding) neighbour ``j``
    among its 8 dilated neighbours whose colour similarity is at least ``tau``, averaged over those pairs."""
    pairs = pairwise_weights(similarity, weight, valid, dilation=dilation, tau=tau)
    return pairwise_total(logits, pairs, dilation=dilation) / pairs.sum().clamp_min(1.0)


def pairwise_weights(
    similarity: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor, *, dilation: int, tau: float
) -> torch.Tensor:
    """``(B, 8, h, w)``: 1 for the pairs :func:`pairwise_loss` averages over (cell, k-th dilated neighbour); their
    sum is its normaliser, which does not depend on the logits."""
    out = [
        (similarity[:, k : k + 1] >= tau).float() * weight * _shift(valid, dy, dx)
        for k, (dy, dx) in enumerate(neighbour_offsets(dilation))
    ]
    return torch.cat(out, 1)


def pairwise_total(logits: torch.Tensor, pairs: torch.Tensor, *, dilation: int) -> torch.Tensor:
    """The sum of ``-log P(y_i = y_j)`` over the ``pairs`` (:func:`pairwise_weights`) of a batch."""
    log_fg = F.logsigmoid(logits)
    log_bg = F.logsigmoid(-logits)
    total = logits.new_zeros(())
    for k, (dy, dx) in enumerate(neighbour_offsets(dilation)):
        same = torch.logaddexp(log_fg + _shift(log_fg, dy, dx), log_bg + _shift(log_bg, dy, dx))
        total = total - (same * pairs[:, k : k + 1]).sum()
    return total


def outside_loss(logits: torch.Tensor, box: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy towards background over the valid cells outside the box (``(B, 1, h, w)`` maps):
    no pixel outside its box belongs to the object."""
    w = (1.0 - box) * valid
    return bce_total(logits, torch.zeros_like(logits), w) / w.sum().clamp_min(1.0)


def bce_total(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The sum of the binary cross-entropies of ``logits`` towards ``target`` (shares in [0, 1]) weighted by
    ``weight`` (the outside loss and self-training are such sums over their weights' sum)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * weight).sum()
