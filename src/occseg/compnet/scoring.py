"""The CompositionalNet's likelihood terms as batched tensor functions (docs/method.md §A.3–A.5).

Shapes: ``log_act`` is ``(K, H, W)`` (``kappa * mu_k . f_i``); distributions over concepts are
``(..., H, W, K)``; everything is computed in log space with a per-cell max shift, so no overflow.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def log_mix(dist: torch.Tensor, log_act: torch.Tensor) -> torch.Tensor:
    """``log sum_k dist[..., i, k] * exp(log_act[k, i])`` for every cell: ``(..., H, W, K)`` -> ``(..., H, W)``."""
    shift = log_act.max(dim=0).values  # (H, W)
    lin = torch.exp(log_act - shift)  # (K, H, W), in (0, 1]
    dot = torch.einsum("...hwk,khw->...hw", dist, lin)
    return torch.log(dot.clamp_min(_EPS)) + shift


def log_mix_flat(dist: torch.Tensor, log_act: torch.Tensor) -> torch.Tensor:
    """Like :func:`log_mix` for position-independent distributions ``(N, K)`` -> ``(N, H, W)``."""
    shift = log_act.max(dim=0).values
    lin = torch.exp(log_act - shift)
    dot = torch.einsum("nk,khw->nhw", dist, lin)
    return torch.log(dot.clamp_min(_EPS)) + shift


def outlier_loglik(clutter: torch.Tensor, log_act: torch.Tensor) -> torch.Tensor:
    """Outlier log-likelihood per cell: ``max_n log sum_k beta_nk L_ik`` -> ``(H, W)``."""
    return log_mix_flat(clutter, log_act).max(dim=0).values


def align_offset(box_center_cells: tuple[float, float], grid: tuple[int, int]) -> tuple[int, int]:
    """Integer shift that puts a crop's box centre (in crop cells) on the centre of a model grid."""
    cy, cx = box_center_cells
    return round(grid[0] / 2 - cy), round(grid[1] / 2 - cx)


def to_grid(x: torch.Tensor, offset: tuple[int, int], grid: tuple[int, int], fill: float = 0.0):
    """Place a crop map ``(..., h, w)`` on a model grid ``(..., H, W)``: crop cell ``(r, c)`` goes to
    ``(r + dr, c + dc)``. Returns the placed map and the ``(H, W)`` boolean mask of covered grid cells."""
    dr, dc = offset
    h, w = x.shape[-2:]
    gh, gw = grid
    out = torch.full((*x.shape[:-2], gh, gw), fill, dtype=x.dtype, device=x.device)
    valid = torch.zeros((gh, gw), dtype=torch.bool, device=x.device)
    r0, r1 = max(0, dr), min(gh, h + dr)
    c0, c1 = max(0, dc), min(gw, w + dc)
    if r1 > r0 and c1 > c0:
        out[..., r0:r1, c0:c1] = x[..., r0 - dr : r1 - dr, c0 - dc : c1 - dc]
        valid[r0:r1, c0:c1] = True
    return out, valid


def from_grid(g: torch.Tensor, offset: tuple[int, int], crop: tuple[int, int], fill: float = 0.0) -> torch.Tensor:
    """Inverse of :func:`to_grid`: read a grid map back onto the crop cells (``fill`` off the grid)."""
    dr, dc = offset
    h, w = crop
    gh, gw = g.shape[-2:]
    out = torch.full((*g.shape[:-2], h, w), fill, dtype=g.dtype, device=g.device)
    r0, r1 = max(0, -dr), min(h, gh - dr)
    c0, c1 = max(0, -dc), min(w, gw - dc)
    if r1 > r0 and c1 > c0:
        out[..., r0:r1, c0:c1] = g[..., r0 + dr : r1 + dr, c0 + dc : c1 + dc]
    return out


def mixture_scores(
    log_fg: torch.Tensor,
    log_ctx: torch.Tensor,
    prior_fg: torch.Tensor,
    log_out: torch.Tensor,
    valid: torch.Tensor,
    *,
    omega: float,
    outlier_weight: float,
    occluded: torch.Tensor | None = None,
    normalize: bool = False,
) -> torch.Tensor:
    """Classification score of every mixture (docs/method.md §A.5), ``(M,)``.

    With ``normalize`` the sum is divided by the number of cells kept, so classes whose grids cover
    different numbers of cells compete on equal terms.

    ``s^m = sum_i valid_i (1 - o_i) max(0, l_i^m - (log w + log p_out(f_i)))`` with the context-aware mixture
    ``l_i^m = log((1 - omega) pi_fg alpha.L + omega (1 - pi_fg) chi.L)``: the log-likelihood ratio of the
    object model against explaining every cell by the outlier model. Cells in ``occluded`` (the reasoning's
    occlusion prior) are left out, so the occluder cannot count for or against the class.
    """
    pf = prior_fg.clamp(1e-6, 1 - 1e-6)
    ell = torch.logaddexp(log_fg + torch.log((1 - omega) * pf), log_ctx + torch.log(omega * (1 - pf)))
    margin = (ell - (log_out + torch.log(torch.tensor(outlier_weight)))).clamp_min(0)
    keep = valid.to(margin.dtype)
    if occluded is not None:
        keep = keep * (1 - occluded.to(margin.dtype))
    total = (margin * keep).flatten(-2).sum(-1)
    if normalize:
        return total / keep.sum().clamp_min(1.0)
    return total


def cell_terms(
    log_fg: torch.Tensor,
    log_ctx: torch.Tensor,
    prior_fg: torch.Tensor,
    log_out: torch.Tensor,
    *,
    outlier_weight: float,
) -> torch.Tensor:
    """Per-cell object / context / occluder log-scores (Eqs. 9–11), stacked as ``(3, H, W)``."""
    pf = prior_fg.clamp(1e-6, 1 - 1e-6)
    fg = log_fg + torch.log(pf)
    ctx = log_ctx + torch.log(1 - pf)
    occ = log_out + torch.log(torch.tensor(outlier_weight))
    return torch.stack([fg, ctx, occ])


def rigid_hole_fill(fg: torch.Tensor) -> torch.Tensor:
    """A cell that is not foreground but has foreground directly above, below, left and right becomes foreground."""
    p = torch.nn.functional.pad(fg.float()[None, None], (1, 1, 1, 1))[0, 0].bool()
    enclosed = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return fg | enclosed


def box_mask_on_grid(
    grid: tuple[int, int], offset: tuple[int, int], box_cells, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Grid cells whose centre lies inside the box ``(x1, y1, x2, y2)`` in crop-cell coordinates; grid cell
    ``(r, c)`` is crop cell ``(r - offset[0], c - offset[1])`` (offset ``(0, 0)``: the crop's own cells)."""
    gh, gw = grid
    dr, dc = offset
    rows = torch.arange(gh, dtype=torch.float32, device=device) + 0.5 - dr
    cols = torch.arange(gw, dtype=torch.float32, device=device) + 0.5 - dc
    x1, y1, x2, y2 = box_cells
    return ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]
