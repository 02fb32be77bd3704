"""Colour models of an object and its surroundings, seeded by the CompositionalNet's confident cells.

Two forms, both working on a small image region at a fixed working resolution:

* :func:`histogram_llr` - soft colour histograms (CIE Lab, ``bins^3`` cells, lightly smoothed) of the
  object and of the background, weighted by the current object probability; returns the per-pixel
  log-likelihood ratio. Re-estimated a few times as the probability changes (an EM-like loop in
  :mod:`occseg.refine.object`).
* :func:`grabcut_mask` - OpenCV's GrabCut (colour GMMs + graph cut) initialised with a trimap built by
  :func:`trimap_from_logit` from the model's map instead of the box rectangle.
"""

from __future__ import annotations

import cv2
import numpy as np

GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD = cv2.GC_BGD, cv2.GC_FGD, cv2.GC_PR_BGD, cv2.GC_PR_FGD


def colour_index(image: np.ndarray, bins: int) -> np.ndarray:
    """Histogram cell of every pixel of an ``(H, W, 3)`` uint8 RGB image: Lab quantised to ``bins`` levels
    per channel, flattened to ``[0, bins^3)``."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"colour_index: need an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.int64)
    q = (lab * bins) >> 8
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def _smooth3(h: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 along each axis of a 3-D histogram (edges replicated)."""
    for ax in range(3):
        p = np.concatenate([np.take(h, [0], ax), h, np.take(h, [-1], ax)], axis=ax)
        n = h.shape[ax]
        h = (
            0.25 * np.take(p, range(0, n), ax)
            + 0.5 * np.take(p, range(1, n + 1), ax)
            + 0.25 * np.take(p, range(2, n + 2), ax)
        )
    return h


def histogram_log_density(
    index: np.ndarray, weight: np.ndarray, bins: int, *, smooth: bool = True, prior: float = 1e-3
) -> np.ndarray:
    """``log p(colour)`` of every histogram cell, ``(bins^3,)`` float64, from a weighted colour histogram.

    ``index`` from :func:`colour_index`; ``weight``: per-pixel sample weights (``>= 0``, same shape; a boolean
    mask selects pixels). ``smooth``: a [1, 2, 1] / 4 blur along each colour axis; ``prior``: the share of a
    uniform distribution mixed in, so colours never seen get a finite, low density. Without any weight the
    density is uniform.
    """
    n = bins**3
    h = np.bincount(index.ravel(), weights=np.asarray(weight, dtype=np.float64).ravel(), minlength=n)
    if smooth:
        h = _smooth3(h.reshape(bins, bins, bins)).ravel()
    h = (1 - prior) * h / max(h.sum(), 1e-12) + prior / n
    return np.log(h)


def histogram_llr(
    index: np.ndarray,
    fg_weight: np.ndarray,
    bg_weight: np.ndarray,
    bins: int,
    *,
    smooth: bool = True,
    prior: float = 1e-3,
    clip: float = 5.0,
) -> np.ndarray:
    """Per-pixel ``log p(colour | object) - log p(colour | background)`` from weighted histograms.

    ``index`` from :func:`colour_index`; ``fg_weight`` / ``bg_weight`` are per-pixel sample weights (``>= 0``,
    e.g. the object probability and one minus it). ``prior`` is the share of a uniform distribution mixed
    into each histogram (so unseen colours are neutral). Returns ``(H, W)`` float32 clipped to ``+-clip``.
    """
    lf = histogram_log_density(index, fg_weight, bins, smooth=smooth, prior=prior)
    lb = histogram_log_density(index, bg_weight, bins, smooth=smooth, prior=prior)
    llr = np.clip(lf - lb, -clip, clip).astype(np.float32)
    return llr[index]


def trimap_from_logit(
    logit: np.ndarray,
    allowed: np.ndarray,
    *,
    fg_share: float,
    bg_share: float,
    definite_fg: np.ndarray | None = None,
) -> np.ndarray:
    """GrabCut trimap from object log-odds. Outside ``allowed``: definite background. Inside: the
    ``fg_share`` of the allowed pixels with the highest log-odds (only positive ones) are definite object,
    the ``bg_share`` with the lowest (only negative ones) definite background, the rest probable object /
    background by the sign of the log-odds. Shares (not thresholds) keep the seeds stable when the scale of
    the model's scores changes. ``definite_fg`` (e.g. an ellipse core) is added as definite object."""
    tri = np.where(logit > 0, GC_PR_FGD, GC_PR_BGD).astype(np.uint8)
    vals = logit[allowed]
    if vals.size:
        if fg_share > 0:
            hi = np.quantile(vals, 1.0 - fg_share)
            tri[allowed & (logit >= hi) & (logit > 0)] = GC_FGD
        if bg_share > 0:
            lo = np.quantile(vals, bg_share)
            tri[allowed & (logit <= lo) & (logit < 0)] = GC_BGD
    if definite_fg is not None:
        tri[definite_fg & allowed] = GC_FGD
    tri[~allowed] = GC_BGD
    return tri


def grabcut_mask(image: np.ndarray, trimap: np.ndarray, iters: int, *, seed: int = 0) -> np.ndarray:
    """GrabCut from a trimap (``cv2.GC_*`` values); returns the boolean object mask. When the trimap has no
    object or no background pixels at all, GrabCut cannot fit its models and the trimap's own object
    pixels (definite + probable) are returned unchanged."""
    fg = (trimap == GC_FGD) | (trimap == GC_PR_FGD)
    bg = ~fg
    if iters <= 0 or not fg.any() or not bg.any() or min(trimap.shape) < 2:
        return fg
    mask = trimap.copy()
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    cv2.grabCut(np.ascontiguousarray(image), mask, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return (mask == GC_FGD) | (mask == GC_PR_FGD)


def quadratic_features(image: np.ndarray) -> np.ndarray:
    """RGB scaled to [0, 1] and its quadratic monomials, ``(N, 10)``: ``[r², g², b², rg, rb, gb, r, g, b, 1]``.
    A Gaussian log-density of every pixel is then one matrix product (see :func:`gmm_llr`)."""
    x = image.reshape(-1, 3).astype(np.float64) / 255.0
    iu, ju = np.triu_indices(3, 1)
    return np.concatenate([x * x, x[:, iu] * x[:, ju], x, np.ones((x.shape[0], 1))], axis=1)


def _gmm_loglik(feats: np.ndarray, pi: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``log pi_k + log N(x | mu_k, cov_k)`` for every sample and component, ``(N, k)``, from the samples'
    :func:`quadratic_features`."""
    d = mu.shape[1]
    iu, ju = np.triu_indices(d, 1)
    coef = np.empty((mu.shape[0], feats.shape[1]))
    const = np.empty(mu.shape[0])
    for j in range(mu.shape[0]):
        prec = np.linalg.inv(cov[j])
        pm = prec @ mu[j]
        coef[j] = np.concatenate([np.diag(prec), 2 * prec[iu, ju], -2 * pm, [mu[j] @ pm]])
        _, logdet = np.linalg.slogdet(cov[j])
        const[j] = np.log(pi[j] + 1e-12) - 0.5 * (logdet + d * np.log(2 * np.pi))
    return -0.5 * (feats @ coef.T) + const[None]


def _gmm_fit(
    feats: np.ndarray, w: np.ndarray, k: int, iters: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted EM for a ``k``-component full-covariance Gaussian mixture of the RGB columns of ``feats``
    (:func:`quadratic_features`); loops run over components and iterations only. Start: weighted k-means++
    seeds (a fixed random seed: deterministic) and the nearest-seed partition."""
    x = feats[:, 6:9]
    n, d = x.shape
    rng = np.random.default_rng(seed)
    seeds = [x[rng.choice(n, p=w / w.sum())]]
    dist = ((x - seeds[0]) ** 2).sum(1)
    for _ in range(1, k):
        q = dist * w
        if q.sum() <= 1e-12:
            break
        seeds.append(x[rng.choice(n, p=q / q.sum())])
        dist = np.minimum(dist, ((x - seeds[-1]) ** 2).sum(1))
    c = np.asarray(seeds)
    k = c.shape[0]
    resp = np.eye(k)[((x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]).argmin(1)]
    reg = 1e-4 * np.eye(d)
    pi = mu = cov = None
    for it in range(iters + 1):
        rw = resp * w[:, None]
        nk = rw.sum(0) + 1e-9
        pi = nk / nk.sum()
        mu = (rw.T @ x) / nk[:, None]
        # E[x x^T] per component from the monomial columns, minus mu mu^T
        second = (rw.T @ feats[:, :6]) / nk[:, None]  # (k, 6): r², g², b², rg, rb, gb
        cov = np.empty((k, d, d))
        cov[:, [0, 1, 2], [0, 1, 2]] = second[:, :3]
        cov[:, 0, 1] = cov[:, 1, 0] = second[:, 3]
        cov[:, 0, 2] = cov[:, 2, 0] = second[:, 4]
        cov[:, 1, 2] = cov[:, 2, 1] = second[:, 5]
        cov = cov - mu[:, :, None] * mu[:, None, :] + reg
        if it < iters:
            ll = _gmm_loglik(feats, pi, mu, cov)
            resp = np.exp(ll - ll.max(1, keepdims=True))
            resp /= resp.sum(1, keepdims=True)
    return pi, mu, cov


def gmm_llr(
    image: np.ndarray,
    fg_weight: np.ndarray,
    bg_weight: np.ndarray,
    *,
    components: int = 5,
    iters: int = 3,
    max_samples: int = 2000,
    clip: float = 5.0,
    feats: np.ndarray | None = None,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel colour log-likelihood ratio (object vs background) from two weighted full-covariance GMMs in
    RGB (scaled to [0, 1]), as GrabCut's colour models but soft-weighted. Each GMM is fitted (``iters`` EM
    rounds) on at most ``max_samples`` pixels (every k-th pixel, deterministic) and evaluated on all pixels,
    or only where ``where`` is true (0 elsewhere). ``feats``: the image's :func:`quadratic_features`, when
    already computed. Returns ``(H, W)`` float32 clipped to ``+-clip``."""
    if feats is None:
        feats = quadratic_features(image)
    step = max(1, -(-feats.shape[0] // max(1, max_samples)))
    sub = np.ascontiguousarray(feats[::step])
    sel = None if where is None else where.ravel()
    ev = feats if sel is None else feats[sel]
    out = []
    for wgt in (fg_weight, bg_weight):
        w = wgt.ravel().astype(np.float64)[::step]
        if w.sum() <= 1e-6:
            return np.zeros(image.shape[:2], np.float32)
        ll = _gmm_loglik(ev, *_gmm_fit(sub, w, components, iters))
        m = ll.max(1)
        out.append(m + np.log(np.exp(ll - m[:, None]).sum(1)))
    llr = np.clip(out[0] - out[1], -clip, clip).astype(np.float32)
    if sel is None:
        return llr.reshape(image.shape[:2])
    full = np.zeros(feats.shape[0], np.float32)
    full[sel] = llr
    return full.reshape(image.shape[:2])
