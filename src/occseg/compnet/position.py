"""Where in its box a feature cell lies: a part-position classifier learned from boxes alone.

Every training box gives free labels: each feature cell of its crop lies at a known position relative to the
box (a bin of a ``rows x cols`` grid over the box, or outside it). A linear softmax classifier over the
cells' concept distributions (the softmax of the vMF log-activations over the model's visual concepts,
:func:`~occseg.compnet.vmf.concept_distribution`) learns which parts of an object show where in its box
(heads at the top, feet at the bottom, the ground and neighbours outside). On the train splits (validation)
of two Occlusion Challenges, the concept distributions ordered more pairs than the raw unit-normalised features
did. The Occlusion Reasoning Module uses it to decide which
of two overlapping objects is in front (:mod:`occseg.reasoning.position_order`): the cells where the two boxes
meet show the object in front, so they look like the parts that belong at their position in that object's box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from occseg.compnet.vmf import concept_distribution, log_activations
from occseg.distributed.collectives import rank_parts, summed_gradients
from occseg.distributed.context import DistContext

#: cells per chunk of the training loss (:func:`fit_position_model`): each chunk's loss and gradients are computed
#: by one rank under torchrun; the cut does not depend on the number of ranks
POSITION_CHUNK = 16384


@dataclass
class PositionModel:
    """``weight (B, D)`` and ``bias (B,)`` of the softmax over ``B = rows * cols + 1`` bins (the last bin:
    outside the box) for ``D``-dimensional cell inputs (the model's concept distributions); ``bins = (rows,
    cols)``."""

    weight: torch.Tensor
    bias: torch.Tensor
    bins: tuple[int, int]

    def __post_init__(self) -> None:
        rows, cols = self.bins
        want = rows * cols + 1
        if self.weight.ndim != 2 or self.weight.shape[0] != want or tuple(self.bias.shape) != (want,):
            raise ValueError(
                f"position model with {rows}x{cols} bins needs weight ({want}, D) and bias ({want},); got "
                f"{tuple(self.weight.shape)} and {tuple(self.bias.shape)}"
            )

    @property
    def outside(self) -> int:
        """The bin of cells outside the box."""
        return self.bins[0] * self.bins[1]

    def to(self, device: torch.device | str) -> PositionModel:
        return PositionModel(self.weight.to(device), self.bias.to(device), self.bins)

    def log_probs(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, h, w)`` log-probability of every bin for each cell of ``(D, h, w)`` inputs."""
        d, h, w = inputs.shape
        x = inputs.reshape(d, h * w).T.to(self.weight)
        return torch.log_softmax(x @ self.weight.T + self.bias, dim=1).T.reshape(-1, h, w)


def position_inputs(features: torch.Tensor, concepts: torch.Tensor, kappa: float) -> torch.Tensor:
    """The classifier's ``(K, h, w)`` inputs from ``(C, h, w)`` crop features: each cell's distribution over the
    ``K`` visual concepts (``concepts``: ``(K, C)`` unit vectors, vMF concentration ``kappa``)."""
    return concept_distribution(log_activations(features.to(concepts), concepts, kappa))


def position_bins(u: torch.Tensor, v: torch.Tensor, bins: tuple[int, int]) -> torch.Tensor:
    """The bin of each position ``(u, v)`` relative to a box (``0..1`` from its left / top edge to its right /
    bottom edge): ``row * cols + col`` inside the box, ``rows * cols`` outside (``u`` or ``v`` outside
    ``[0, 1)``)."""
    rows, cols = bins
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    r = (v * rows).floor().clamp(0, rows - 1).long()
    c = (u * cols).floor().clamp(0, cols - 1).long()
    return torch.where(inside, r * cols + c, torch.full_like(r, rows * cols))


def cell_box_positions(grid: tuple[int, int], box_cells: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, v)`` of every cell centre of an ``(h, w)`` grid relative to a box given in cell coordinates
    ``(x1, y1, x2, y2)`` (cell ``(r, c)`` covers ``[c, c + 1) x [r, r + 1)``); each ``(h, w)``."""
    h, w = grid
    x1, y1, x2, y2 = (float(b) for b in box_cells)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"box {tuple(box_cells)} has no area")
    ys = (torch.arange(h, dtype=torch.float64) + 0.5 - y1) / (y2 - y1)
    xs = (torch.arange(w, dtype=torch.float64) + 0.5 - x1) / (x2 - x1)
    v, u = torch.meshgrid(ys, xs, indexing="ij")
    return u, v


def fit_position_model(
    crops: Sequence[tuple[torch.Tensor, Sequence[float]]],
    bins: tuple[int, int],
    *,
    l2: float = 1e-5,
    max_iter: int = 200,
    max_cells: int | None = None,
    seed: int = 0,
    inputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    dist: DistContext | None = None,
) -> PositionModel:
    """Learn the classifier from ``(inputs (D, h, w), box in cell coordinates)`` pairs: multinomial logistic
    regression on the cells' inputs, ``mean cross-entropy + l2 / 2 * |weight|^2`` (the bias is not penalised),
    minimised with L-BFGS from zero (deterministic). ``inputs`` (optional) turns each crop's tensor into the
    classifier's inputs first (e.g. :func:`position_inputs`), one crop at a time. With more than ``max_cells``
    cells, a random subset of that many (``seed``) is used, chosen before ``inputs`` runs, so memory stays
    bounded by ``max_cells``. The loss is summed over chunks of :data:`POSITION_CHUNK` cells, ``dist``'s ranks
    sharing them (:func:`sharded_softmax_loss`): every rank takes the same steps, whatever their number."""
    rows, cols = bins
    if rows < 1 or cols < 1:
        raise ValueError(f"position bins must be positive, got {bins}")
    if not crops:
        raise ValueError("no training crops for the position model")
    sizes = [int(feats.shape[1] * feats.shape[2]) for feats, _ in crops]
    total = sum(sizes)
    keep = None
    if max_cells is not None and total > max_cells:
        keep = torch.zeros(total, dtype=torch.bool)
        keep[torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:max_cells]] = True
    xs, ys = [], []
    start = 0
    for (feats, box), n in zip(crops, sizes):
        h, w = feats.shape[1:]
        x = inputs(feats) if inputs is not None else feats
        u, v = cell_box_positions((h, w), box)
        x = x.reshape(x.shape[0], n).T.float()
        y = position_bins(u, v, bins).reshape(-1)
        if keep is not None:
            sel = keep[start : start + n]
            x, y = x[sel.to(x.device)], y[sel]
        start += n
        xs.append(x.cpu())
        ys.append(y)
    x = torch.cat(xs).to(device)
    y = torch.cat(ys).to(device)
    nb = rows * cols + 1
    w0, b0 = torch.zeros(nb, x.shape[1], device=device), torch.zeros(nb, device=device)
    weight, bias = _fit_softmax(x, y, w0, b0, l2=l2, max_iter=max_iter, chunk=POSITION_CHUNK, dist=dist)
    return PositionModel(weight, bias, (rows, cols))


def sharded_softmax_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    l2: float,
    chunk: int,
    dist: DistContext | None = None,
) -> torch.Tensor:
    """``mean cross-entropy + l2 / 2 * |weight|^2``, its gradients set on ``weight`` and ``bias``: the rows cut into
    chunks of ``chunk``, each chunk's summed cross-entropy and gradients computed by one of ``dist``'s ranks and
    added in float64 over them (:func:`occseg.distributed.collectives.summed_gradients`)."""
    n = x.shape[0]
    parts = [slice(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    sums = (F.cross_entropy(x[p] @ weight.T + bias, y[p], reduction="sum") for p in rank_parts(dist, parts))
    total = summed_gradients(dist, [weight, bias], ((ce, ce) for ce in sums), 1)
    with torch.no_grad():
        weight.grad = weight.grad / n + l2 * weight
        bias.grad = bias.grad / n
        return (total[0] / n).to(weight.dtype) + 0.5 * l2 * (weight * weight).sum()


def _fit_softmax(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    l2: float,
    max_iter: int,
    chunk: int | None = None,
    dist: DistContext | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean cross-entropy + l2 / 2 * |weight|^2`` minimised with L-BFGS from the given weights (deterministic);
    with ``chunk``, the loss of :func:`sharded_softmax_loss` (shared by ``dist``'s ranks)."""
    weight = weight.detach().float().clone().requires_grad_(True)
    bias = bias.detach().float().clone().requires_grad_(True)
    x = x.float()
    opt = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        if chunk is not None:
            return sharded_softmax_loss(x, y, weight, bias, l2=l2, chunk=chunk, dist=dist)
        loss = F.cross_entropy(x @ weight.T + bias, y) + 0.5 * l2 * (weight * weight).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return weight.detach(), bias.detach()


def box_cell_labels(
    centres: torch.Tensor, boxes: Sequence[Sequence[float]], k: int, bins: tuple[int, int]
) -> torch.Tensor:
    """Free labels of one crop's cells in an image whose objects' boxes are known: the bin of each cell centre in
    box ``k`` where it lies in that box only, the outside bin where it lies in no box, and ``-1`` (no label) where
    it lies in another box, whose object may hide object ``k`` there. ``centres``: ``(..., 2)`` in image pixels;
    boxes ``x1, y1, x2, y2``."""
    pts = torch.as_tensor(centres, dtype=torch.float64).reshape(-1, 2)

    def inside(b: Sequence[float]) -> torch.Tensor:
        return (pts[:, 0] >= b[0]) & (pts[:, 0] < b[2]) & (pts[:, 1] >= b[1]) & (pts[:, 1] < b[3])

    others = torch.zeros(pts.shape[0], dtype=torch.bool, device=pts.device)
    for m, b in enumerate(boxes):
        if m != k:
            others |= inside(b)
    x1, y1, x2, y2 = (float(v) for v in boxes[k])
    lab = position_bins((pts[:, 0] - x1) / (x2 - x1), (pts[:, 1] - y1) / (y2 - y1), bins)
    return torch.where(others, torch.full_like(lab, -1), lab)


def adapt_position_model(
    model: PositionModel, inputs: torch.Tensor, labels: torch.Tensor, *, l2: float = 1e-5, max_iter: int = 200
) -> PositionModel:
    """The classifier refitted to the cells of the images it is about to read (test-time training): from its own
    weights, on ``inputs (N, D)`` labelled by :func:`box_cell_labels` (cells without a label, ``-1``, are left
    out), with the training's objective. Where the same objects come back in many images (a video, the Occlusion
    Challenge's pasted persons), it learns how their parts look in each part of their boxes, which the vote then
    recognises where two boxes meet."""
    keep = labels >= 0
    if not bool(keep.any()):
        raise ValueError("no labelled cell to adapt the part-position classifier to")
    dev = model.weight.device
    weight, bias = _fit_softmax(
        inputs[keep].to(dev), labels[keep].to(dev), model.weight, model.bias, l2=l2, max_iter=max_iter
    )
    return PositionModel(weight, bias, model.bins)
