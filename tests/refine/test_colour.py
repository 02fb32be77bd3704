"""Colour models and GrabCut seeding on small constructed images."""

from __future__ import annotations

import cv2
import numpy as np

from occseg.refine.colour import colour_index, gmm_llr, grabcut_mask, histogram_llr, trimap_from_logit


def two_colour_image() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = np.zeros((40, 50, 3), np.float64)
    obj = np.zeros((40, 50), bool)
    obj[10:30, 15:35] = True
    img[obj] = [200, 30, 40]
    img[~obj] = [30, 120, 200]
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8), obj


def test_histogram_and_gmm_llr_separate_the_colours():
    img, obj = two_colour_image()
    # weights from a deliberately rough guess: a box larger than the object
    guess = np.zeros_like(obj)
    guess[6:34, 10:40] = True
    w = guess.astype(np.float32)
    for llr in (histogram_llr(colour_index(img, 12), w, 1 - w, 12), gmm_llr(img, w, 1 - w)):
        assert llr.shape == obj.shape
        assert (llr[obj] > 0).mean() > 0.99 and (llr[~obj] < 0).mean() > 0.95


def test_colour_index_range():
    img, _ = two_colour_image()
    idx = colour_index(img, 8)
    assert idx.min() >= 0 and idx.max() < 8**3


def test_trimap_shares_and_grabcut():
    img, obj = two_colour_image()
    logit = np.where(obj, 1.0, -1.0) + np.linspace(0, 0.5, obj.size).reshape(obj.shape)
    allowed = np.zeros_like(obj)
    allowed[5:35, 10:40] = True
    tri = trimap_from_logit(logit, allowed, fg_share=0.2, bg_share=0.0)
    assert (tri[~allowed] == cv2.GC_BGD).all()
    fg_seed = tri == cv2.GC_FGD
    assert fg_seed.any() and (fg_seed <= obj).all()
    assert abs(fg_seed.sum() - 0.2 * allowed.sum()) <= 0.02 * allowed.sum() + 1
    assert not (tri[allowed] == cv2.GC_BGD).any()  # bg_share 0: no definite background inside
    out = grabcut_mask(img, tri, 2)
    assert (out == obj).mean() > 0.99
    # nothing to learn the object from: the trimap's own object pixels come back
    none = np.full(obj.shape, cv2.GC_BGD, np.uint8)
    assert not grabcut_mask(img, none, 2).any()


def test_gmm_log_density_matches_the_formula():
    from scipy.stats import multivariate_normal

    from occseg.refine.colour import _gmm_loglik, quadratic_features

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 10, 3)).astype(np.uint8)
    x = img.reshape(-1, 3) / 255.0
    mu = rng.random((2, 3))
    a = rng.random((2, 3, 3))
    cov = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(3)
    pi = np.array([0.3, 0.7])
    ref = np.stack([np.log(pi[j]) + multivariate_normal(mu[j], cov[j]).logpdf(x) for j in range(2)], 1)
    np.testing.assert_allclose(_gmm_loglik(quadratic_features(img), pi, mu, cov), ref, atol=1e-8)


def test_gmm_llr_where_evaluates_only_there():
    img, obj = two_colour_image()
    w = obj.astype(np.float32)
    full = gmm_llr(img, w, 1 - w)
    part = gmm_llr(img, w, 1 - w, where=obj)
    np.testing.assert_allclose(part[obj], full[obj], atol=1e-5)
    assert (part[~obj] == 0).all()
