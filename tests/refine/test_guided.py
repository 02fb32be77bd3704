"""The guided filter against a direct per-pixel implementation of its definition."""

from __future__ import annotations

import numpy as np
import pytest

from occseg.refine.guided import box_mean, guided_filter


def naive_box_mean(x: np.ndarray, r: int) -> np.ndarray:
    h, w = x.shape[:2]
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[i, j] = x[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].reshape(-1, *x.shape[2:]).mean(0)
    return out


def naive_guided(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s definition, window by window (clipped at the border)."""
    g = guide if guide.ndim == 3 else guide[..., None]
    h, w, c = g.shape
    a = np.zeros((h, w, c))
    b = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            gi = g[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].reshape(-1, c)
            pi = p[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].reshape(-1)
            mu = gi.mean(0)
            cov = (gi - mu).T @ (gi - mu) / len(gi)
            cross = ((gi - mu) * (pi - pi.mean())[:, None]).mean(0)
            a[i, j] = np.linalg.solve(cov + eps * np.eye(c), cross)
            b[i, j] = pi.mean() - a[i, j] @ mu
    return (naive_box_mean(a, r) * g).sum(-1) + naive_box_mean(b, r)


@pytest.mark.parametrize("r", [0, 1, 2, 4])
def test_box_mean_matches_clipped_windows(r):
    x = np.random.default_rng(1).random((7, 9, 2))
    np.testing.assert_allclose(box_mean(x, r), naive_box_mean(x, r), atol=1e-5)
    np.testing.assert_allclose(box_mean(x[..., 0], r), naive_box_mean(x[..., 0], r), atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("r,eps", [(1, 1e-2), (2, 1e-3), (3, 0.1)])
def test_guided_filter_matches_definition(channels, r, eps):
    rng = np.random.default_rng(channels * 10 + r)
    guide = rng.random((8, 11, channels))
    if channels == 1:
        guide = guide[..., 0]
    p = rng.random((8, 11))
    np.testing.assert_allclose(guided_filter(guide, p, r, eps), naive_guided(guide, p, r, eps), atol=2e-4)


def test_guided_filter_follows_guide_edges():
    """A noisy step in the source, an exact step in the guide: the output is the clean step."""
    guide = np.zeros((20, 20, 3))
    guide[:, 10:] = 1.0
    p = guide[..., 0] + np.random.default_rng(0).normal(0, 0.1, (20, 20))
    out = guided_filter(guide, p, 3, 1e-4)
    assert np.abs(out[:, :10]).max() < 0.1 and np.abs(out[:, 10:] - 1).max() < 0.1
    # a flat guide makes it a plain (twice applied) local mean
    flat = guided_filter(np.full((20, 20), 0.5), p, 3, 1e-4)
    np.testing.assert_allclose(flat, box_mean(box_mean(p, 3), 3), atol=1e-5)


def test_guided_filter_errors():
    with pytest.raises(ValueError, match="eps must be > 0"):
        guided_filter(np.zeros((4, 4)), np.zeros((4, 4)), 1, 0.0)
    with pytest.raises(ValueError, match="does not match"):
        guided_filter(np.zeros((4, 5)), np.zeros((4, 4)), 1, 0.1)
    with pytest.raises(ValueError, match="radius must be >= 0"):
        guided_filter(np.zeros((4, 4)), np.zeros((4, 4)), -1, 0.1)
