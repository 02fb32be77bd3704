"""The guided filter (He, Sun and Tang, ECCV 2010 / TPAMI 2013) with box filters: edge-aware smoothing
and upsampling of a score map, guided by the image.

Window means are over the part of the ``(2r+1)^2`` window that lies inside the array (the windows are
clipped at the border, as in the paper's reference code, which divides box sums by the per-pixel count).
Everything is a handful of ``cv2.boxFilter`` calls (float32) and array arithmetic: no per-pixel loops.
"""

from __future__ import annotations

import cv2
import numpy as np


class _Means:
    """Clipped-window means of one array shape and radius (the per-pixel window count computed once)."""

    def __init__(self, shape: tuple[int, int], radius: int) -> None:
        self.k = (2 * radius + 1, 2 * radius + 1)
        ones = np.ones(shape, dtype=np.float32)
        self.inv_count = 1.0 / cv2.boxFilter(ones, -1, self.k, normalize=False, borderType=cv2.BORDER_CONSTANT)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return cv2.boxFilter(x, -1, self.k, normalize=False, borderType=cv2.BORDER_CONSTANT) * self.inv_count


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean of ``x`` (``(H, W)``, or ``(H, W, C)`` per channel) over the ``(2r+1)^2`` window clipped to the
    array; float32."""
    if radius < 0:
        raise ValueError(f"box_mean: radius must be >= 0, got {radius}")
    x = np.asarray(x, dtype=np.float32)
    if radius == 0:
        return x.copy()
    mean = _Means(x.shape[:2], radius)
    if x.ndim == 2:
        return mean(x)
    return np.stack([mean(x[..., c]) for c in range(x.shape[2])], axis=-1)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Filter ``src`` (``(H, W)``) with the edge-preserving guided filter.

    ``guide`` is ``(H, W)`` (grey) or ``(H, W, C)`` (colour, e.g. RGB scaled to [0, 1]); ``radius`` is the
    window radius in pixels and ``eps`` the regulariser (in squared guide units: larger = smoother, less
    edge-aware). Returns ``(H, W)`` float32. The output follows the guide's edges where the guide varies
    by more than about ``sqrt(eps)`` inside a window, and is a plain local mean where it does not.
    """
    src = np.asarray(src, dtype=np.float32)
    guide = np.asarray(guide, dtype=np.float32)
    if src.ndim != 2:
        raise ValueError(f"guided_filter: src must be (H, W), got shape {src.shape}")
    if guide.shape[:2] != src.shape or guide.ndim not in (2, 3):
        raise ValueError(f"guided_filter: guide shape {guide.shape} does not match src shape {src.shape}")
    if eps <= 0:
        raise ValueError(f"guided_filter: eps must be > 0, got {eps}")
    if radius < 0:
        raise ValueError(f"guided_filter: radius must be >= 0, got {radius}")
    if radius == 0:
        return src.copy()
    mean = _Means(src.shape, radius)
    mean_p = mean(src)
    if guide.ndim == 2:
        mean_i = mean(guide)
        a = (mean(guide * src) - mean_i * mean_p) / (mean(guide * guide) - mean_i * mean_i + eps)
        b = mean_p - a * mean_i
        return mean(a) * guide + mean(b)
    if guide.shape[2] == 3:
        return _guided_colour3(guide, src, mean_p, mean, eps)
    c = guide.shape[2]
    chans = [np.ascontiguousarray(guide[..., k]) for k in range(c)]
    mean_i = np.stack([mean(g) for g in chans], -1)  # (H, W, C)
    cov_ip = np.stack([mean(g * src) for g in chans], -1) - mean_i * mean_p[..., None]
    sigma = np.empty((*src.shape, c, c), dtype=np.float64)
    for i in range(c):
        for j in range(i, c):
            sigma[..., i, j] = sigma[..., j, i] = mean(chans[i] * chans[j]) - mean_i[..., i] * mean_i[..., j]
    sigma += eps * np.eye(c)
    a = np.linalg.solve(sigma, cov_ip[..., None].astype(np.float64))[..., 0].astype(np.float32)  # (H, W, C)
    b = mean_p - (a * mean_i).sum(-1)
    return sum(mean(a[..., k]) * chans[k] for k in range(c)) + mean(b)


def _guided_colour3(guide: np.ndarray, src: np.ndarray, mean_p: np.ndarray, mean: _Means, eps: float) -> np.ndarray:
    """Three-channel guide: the per-pixel 3x3 system solved in closed form (symmetric cofactors)."""
    r, g, b = (np.ascontiguousarray(guide[..., k]) for k in range(3))
    mr, mg, mb = mean(r), mean(g), mean(b)
    cr = mean(r * src) - mr * mean_p
    cg = mean(g * src) - mg * mean_p
    cb = mean(b * src) - mb * mean_p
    rr = mean(r * r) - mr * mr + eps
    rg = mean(r * g) - mr * mg
    rb = mean(r * b) - mr * mb
    gg = mean(g * g) - mg * mg + eps
    gb = mean(g * b) - mg * mb
    bb = mean(b * b) - mb * mb + eps
    # inverse of [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] = adjugate / determinant
    i_rr = gg * bb - gb * gb
    i_rg = gb * rb - rg * bb
    i_rb = rg * gb - gg * rb
    i_gg = rr * bb - rb * rb
    i_gb = rb * rg - rr * gb
    i_bb = rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    ar = (i_rr * cr + i_rg * cg + i_rb * cb) / det
    ag = (i_rg * cr + i_gg * cg + i_gb * cb) / det
    ab = (i_rb * cr + i_gb * cg + i_bb * cb) / det
    bias = mean_p - ar * mr - ag * mg - ab * mb
    return mean(ar) * r + mean(ag) * g + mean(ab) * b + mean(bias)
