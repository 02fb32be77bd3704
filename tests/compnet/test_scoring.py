"""The CompositionalNet's likelihood terms against direct, naive formulas on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from occseg.compnet.scoring import (
    align_offset,
    cell_terms,
    from_grid,
    log_mix,
    log_mix_flat,
    mixture_scores,
    outlier_loglik,
    rigid_hole_fill,
    to_grid,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _dist(*shape: int, seed: int = 0) -> torch.Tensor:
    """Random distributions over the last axis (rows sum to 1)."""
    return torch.softmax(2 * torch.randn(*shape, generator=_gen(seed)), dim=-1)


def naive_log_mix(dist: torch.Tensor, log_act: torch.Tensor) -> torch.Tensor:
    """``log sum_k dist[..., i, k] exp(log_act[k, i])`` cell by cell, in the dtype of the inputs (no shift)."""
    lead = dist.shape[:-3]
    h, w, k = dist.shape[-3:]
    flat = dist.reshape(-1, h, w, k)
    out = torch.empty(flat.shape[0], h, w, dtype=dist.dtype)
    for m in range(flat.shape[0]):
        for i in range(h):
            for j in range(w):
                out[m, i, j] = torch.log(sum(flat[m, i, j, c] * torch.exp(log_act[c, i, j]) for c in range(k)))
    return out.reshape(*lead, h, w)


# --------------------------------------------------------------------------------------------------- log_mix


def test_log_mix_equals_the_naive_sum():
    k, h, w = 5, 3, 4
    dist = _dist(2, h, w, k, seed=1)
    log_act = 3 * torch.randn(k, h, w, generator=_gen(2))
    got = log_mix(dist, log_act)
    assert got.shape == (2, h, w) and got.dtype == torch.float32
    torch.testing.assert_close(got, naive_log_mix(dist, log_act), rtol=0, atol=1e-5)
    # no leading axis: (H, W, K) -> (H, W)
    torch.testing.assert_close(log_mix(dist[1], log_act), naive_log_mix(dist[1], log_act), rtol=0, atol=1e-5)


def test_log_mix_large_kappa_matches_float64_where_naive_float32_overflows():
    k, h, w = 4, 2, 3
    dist = _dist(h, w, k, seed=3)
    cos = torch.tanh(torch.randn(k, h, w, generator=_gen(4)))
    cos[0] = 0.95  # every cell has a large activation: exp(190) > float32 max (3.4e38 = exp(88.7))
    log_act = 200.0 * cos
    naive32 = naive_log_mix(dist, log_act)
    assert torch.isinf(naive32).all()  # the naive formula overflows in float32 ...
    naive64 = naive_log_mix(dist.double(), log_act.double())
    assert torch.isfinite(naive64).all()  # ... but not in float64
    got = log_mix(dist, log_act)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), naive64, rtol=1e-6, atol=1e-4)


def test_log_mix_of_one_hot_distribution_is_that_concepts_activation():
    log_act = torch.tensor([[[10.0]], [[0.0]], [[-3.0]]])  # K=3, one cell
    for k in range(3):
        d = torch.zeros(1, 1, 3)
        d[0, 0, k] = 1.0
        assert float(log_mix(d, log_act)) == pytest.approx(float(log_act[k, 0, 0]), abs=1e-6)


def test_log_mix_flat_equals_log_mix_of_the_broadcast_distribution_and_naive():
    k, h, w = 6, 3, 2
    dist = _dist(3, k, seed=5)  # (N, K) position independent
    log_act = 4 * torch.randn(k, h, w, generator=_gen(6))
    got = log_mix_flat(dist, log_act)
    assert got.shape == (3, h, w)
    naive = naive_log_mix(dist[:, None, None, :].expand(3, h, w, k).contiguous(), log_act)
    torch.testing.assert_close(got, naive, rtol=0, atol=1e-5)
    torch.testing.assert_close(got, log_mix(dist[:, None, None, :].expand(3, h, w, k), log_act), rtol=0, atol=1e-6)


def test_outlier_loglik_is_the_best_clutter_model_per_cell():
    k, h, w = 5, 4, 3
    clutter = _dist(3, k, seed=7)
    log_act = 5 * torch.randn(k, h, w, generator=_gen(8))
    got = outlier_loglik(clutter, log_act)
    assert got.shape == (h, w)
    per_model = torch.stack(
        [naive_log_mix(clutter[n].expand(h, w, k).contiguous(), log_act) for n in range(clutter.shape[0])]
    )
    torch.testing.assert_close(got, per_model.max(0).values, rtol=0, atol=1e-5)
    # every clutter model wins somewhere in this draw, so the max really is taken per cell
    assert len(set(per_model.argmax(0).flatten().tolist())) >= 2


# ----------------------------------------------------------------------------------------- mixture_scores


def naive_mixture_scores(log_fg, log_ctx, prior, log_out, valid, omega, w, occluded=None) -> torch.Tensor:
    """``s^m = sum_i valid_i (1 - o_i) max(0, l_i^m - (log w + c_i))`` with
    ``l = log((1 - omega) pi alpha.L + omega (1 - pi) chi.L)``, in float64 with Python loops."""
    m_, h, wd = log_fg.shape
    out = []
    for m in range(m_):
        s = 0.0
        for i in range(h):
            for j in range(wd):
                if not valid[i, j] or (occluded is not None and occluded[i, j]):
                    continue
                pi = float(prior[m, i, j])
                lik = (1 - omega) * pi * math.exp(float(log_fg[m, i, j])) + omega * (1 - pi) * math.exp(
                    float(log_ctx[m, i, j])
                )
                s += max(0.0, math.log(lik) - (math.log(w) + float(log_out[i, j])))
        out.append(s)
    return torch.tensor(out, dtype=torch.float64)


def _score_inputs(seed: int = 0, m: int = 3, h: int = 4, w: int = 5):
    g = _gen(seed)
    log_fg = 6 * torch.randn(m, h, w, generator=g)
    log_ctx = 6 * torch.randn(m, h, w, generator=g)
    prior = 0.01 + 0.98 * torch.rand(m, h, w, generator=g)
    log_out = 6 * torch.randn(h, w, generator=g)
    valid = torch.rand(h, w, generator=g) > 0.25
    occluded = torch.rand(h, w, generator=g) > 0.6
    return log_fg, log_ctx, prior, log_out, valid, occluded


def test_mixture_scores_equal_the_direct_formula():
    log_fg, log_ctx, prior, log_out, valid, occluded = _score_inputs()
    assert not valid.all() and occluded.any() and (valid & ~occluded).any()
    got = mixture_scores(log_fg, log_ctx, prior, log_out, valid, omega=0.2, outlier_weight=0.1)
    assert got.shape == (3,)
    want = naive_mixture_scores(log_fg, log_ctx, prior, log_out, valid, 0.2, 0.1)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)
    got_occ = mixture_scores(log_fg, log_ctx, prior, log_out, valid, omega=0.2, outlier_weight=0.1, occluded=occluded)
    want_occ = naive_mixture_scores(log_fg, log_ctx, prior, log_out, valid, 0.2, 0.1, occluded)
    torch.testing.assert_close(got_occ.double(), want_occ, rtol=1e-5, atol=1e-4)
    assert (got_occ <= got + 1e-5).all() and (got_occ < got).any()  # masking only removes (non-negative) terms
    # an all-False occlusion map is the same as none
    none = torch.zeros_like(valid)
    same = mixture_scores(log_fg, log_ctx, prior, log_out, valid, omega=0.2, outlier_weight=0.1, occluded=none)
    torch.testing.assert_close(same, got)


def test_mixture_scores_other_omega_and_weight_and_large_values():
    log_fg, log_ctx, prior, log_out, valid, _ = _score_inputs(seed=3)
    log_fg, log_ctx, log_out = log_fg + 120, log_ctx + 115, log_out + 118  # exp(120) overflows float32
    got = mixture_scores(log_fg, log_ctx, prior, log_out, valid, omega=0.5, outlier_weight=0.3)
    assert torch.isfinite(got).all()
    want = naive_mixture_scores(log_fg, log_ctx, prior, log_out, valid, 0.5, 0.3)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-3)


def test_mixture_scores_extreme_priors_stay_finite():
    log_fg, log_ctx, _, log_out, valid, _ = _score_inputs(seed=4)
    prior = torch.zeros_like(log_fg)
    prior[0] = 1.0  # exactly 0 and 1: clamped inside, no log(0)
    got = mixture_scores(log_fg, log_ctx, prior, log_out, valid, omega=0.2, outlier_weight=0.1)
    assert torch.isfinite(got).all() and (got >= 0).all()


def test_cell_terms_equal_the_direct_formula():
    log_fg, log_ctx, prior, log_out, _, _ = _score_inputs(seed=5, m=1)
    got = cell_terms(log_fg[0], log_ctx[0], prior[0], log_out, outlier_weight=0.1)
    assert got.shape == (3, 4, 5)
    torch.testing.assert_close(got[0], log_fg[0] + torch.log(prior[0]))
    torch.testing.assert_close(got[1], log_ctx[0] + torch.log(1 - prior[0]))
    torch.testing.assert_close(got[2], log_out + math.log(0.1))


# ------------------------------------------------------------------------------------------- grid placement


def test_to_grid_places_every_cell_for_a_positive_offset():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # (lead, h, w)
    g, valid = to_grid(x, (1, 2), (5, 5), fill=-1.0)
    assert g.shape == (2, 5, 5) and valid.shape == (5, 5) and valid.dtype == torch.bool
    want = torch.full((2, 5, 5), -1.0)
    want_valid = torch.zeros(5, 5, dtype=torch.bool)
    for r in range(3):
        for c in range(4):
            if 0 <= r + 1 < 5 and 0 <= c + 2 < 5:  # columns 3, 4 of the crop fall off the grid
                want[:, r + 1, c + 2] = x[:, r, c]
                want_valid[r + 1, c + 2] = True
    assert torch.equal(g, want) and torch.equal(valid, want_valid)
    assert int(valid.sum()) == 3 * 3
    assert float(g[0, 1, 2]) == 0.0 and float(g[1, 3, 4]) == float(x[1, 2, 2])


def test_to_grid_places_every_cell_for_a_negative_offset():
    x = torch.arange(1, 13, dtype=torch.float32).reshape(3, 4)
    g, valid = to_grid(x, (-1, -2), (4, 4))
    want = torch.zeros(4, 4)
    want[0:2, 0:2] = x[1:3, 2:4]
    assert torch.equal(g, want)
    assert valid.tolist() == [[True, True, False, False], [True, True, False, False]] + [[False] * 4] * 2


def test_to_grid_off_the_grid_and_dtypes():
    x = torch.ones(3, 3, dtype=torch.bool)
    g, valid = to_grid(x, (10, 0), (4, 4), fill=False)
    assert g.dtype == torch.bool and not g.any() and not valid.any()
    g, valid = to_grid(torch.ones(2, 2), (0, -5), (4, 4), fill=7.0)
    assert (g == 7.0).all() and not valid.any()


@pytest.mark.parametrize("offset", [(0, 0), (2, 1), (-1, 3), (1, -2), (-2, -1)])
def test_from_grid_inverts_to_grid(offset):
    x = torch.randn(3, 4, 5, generator=_gen(9))  # (K, h, w) as for log activations
    g, valid = to_grid(x, offset, (6, 6), fill=float("nan"))
    back = from_grid(g, offset, (4, 5), fill=-9.0)
    on_grid = from_grid(valid, offset, (4, 5), fill=False)  # crop cells that landed on the grid
    assert torch.equal(back[:, on_grid], x[:, on_grid])
    assert (back[:, ~on_grid] == -9.0).all()
    assert int(on_grid.sum()) == int(valid.sum())
    # and the grid cells it covered are exactly the ones that are not NaN
    assert torch.equal(valid, ~torch.isnan(g[0]))


def test_align_offset_centres_the_box_on_the_grid():
    assert align_offset((6.0, 5.0), (12, 10)) == (0, 0)
    assert align_offset((3.4, 2.6), (8, 8)) == (1, 1)  # round(4 - 3.4), round(4 - 2.6)
    assert align_offset((9.2, 7.0), (8, 6)) == (-5, -4)
    # the box centre lands on the grid centre (to the nearest cell)
    dr, dc = align_offset((3.4, 2.6), (8, 8))
    assert abs(3.4 + dr - 4) <= 0.5 and abs(2.6 + dc - 4) <= 0.5


# ---------------------------------------------------------------------------------------------- hole filling


def _grid(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[ch == "#" for ch in r] for r in rows])


def test_rigid_hole_fill_on_a_hand_drawn_map():
    fg = _grid(
        [
            ".#.....",
            "#.#.##.",  # (1, 1): foreground above, below, left and right -> filled
            ".#.#..#",  # (2, 2): nothing below; (2, 5): nothing on the left -> both stay
            "...#.#.",
            "##..#..",  # (4, 5): nothing on the right -> stays
            ".#.#.#.",  # (5, 4): foreground left, right and above, but below is off the map -> stays
        ]
    )
    want = fg.clone()
    want[1, 1] = True
    assert torch.equal(rigid_hole_fill(fg), want)


def test_rigid_hole_fill_fills_single_holes_only():
    ring = _grid([".###.", "#...#", ".###."])  # a 3-cell hole: no cell of it is enclosed on 4 sides
    assert torch.equal(rigid_hole_fill(ring), ring)
    plus = _grid([".#.", "#.#", ".#."])
    assert rigid_hole_fill(plus).tolist() == [[False, True, False], [True, True, True], [False, True, False]]
    assert not rigid_hole_fill(torch.zeros(4, 4, dtype=torch.bool)).any()
    full = torch.ones(3, 5, dtype=torch.bool)
    assert torch.equal(rigid_hole_fill(full), full)
