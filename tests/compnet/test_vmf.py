"""vMF mixture EM: recovery of planted directions, monotone likelihood, repeatability, chunking."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from occseg.compnet.vmf import (
    concept_distribution,
    cosine_map,
    fit_vmf_mixture,
    kmeans_pp_init,
    log_activations,
)
from tests.compnet.conftest import torch_threads

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/compnet/conftest.py: torch_threads

DIM = 24
PROPORTIONS = (0.05, 0.10, 0.15, 0.20, 0.20, 0.30)


def planted_data(n: int = 2400, seed: int = 0, noise: float = 0.12):
    """Unit vectors scattered around 6 planted unit directions in R^24 with unequal proportions.

    Per-coordinate Gaussian noise of std ``noise`` then normalisation: the mean cosine to the planted direction
    is about ``1 / sqrt(1 + 24 noise^2)`` = 0.87, a concentration close to a vMF with kappa ~ 90."""
    g = torch.Generator().manual_seed(seed)
    k = len(PROPORTIONS)
    mus = F.normalize(torch.randn(k, DIM, generator=g), dim=1)
    counts = [round(p * n) for p in PROPORTIONS]
    labels = torch.cat([torch.full((c,), j) for j, c in enumerate(counts)])
    x = F.normalize(mus[labels] + noise * torch.randn(len(labels), DIM, generator=g), dim=1)
    perm = torch.randperm(len(labels), generator=g)
    return x[perm], labels[perm], mus


@pytest.fixture(scope="module")
def planted():
    return planted_data()


@pytest.fixture(scope="module")
def fitted(planted):
    """Fitted with one torch thread, like the tests that compare against it bit for bit (float sums, hence the
    last bits of the result, depend on the thread count)."""
    x, _, _ = planted
    with torch_threads(1):
        return fit_vmf_mixture(x, len(PROPORTIONS), 60.0, seed=0)


def _match(learned: torch.Tensor, planted: torch.Tensor) -> torch.Tensor:
    """For each planted direction, the index of the learned mean closest to it (cosine)."""
    return (planted @ learned.T).argmax(1)


def test_em_recovers_planted_directions_and_proportions(planted, fitted):
    _, _, mus = planted
    assert fitted.means.shape == (6, DIM) and fitted.weights.shape == (6,)
    torch.testing.assert_close(fitted.means.norm(dim=1), torch.ones(6))
    match = _match(fitted.means, mus)
    assert sorted(match.tolist()) == list(range(6))  # one learned mean per planted direction
    cos = (fitted.means[match] * mus).sum(1)
    assert float(cos.min()) > 0.99, cos
    torch.testing.assert_close(fitted.weights[match], torch.tensor(PROPORTIONS), rtol=0, atol=0.01)
    assert float(fitted.weights.sum()) == pytest.approx(1.0, abs=1e-5)
    assert fitted.kappa == 60.0


def test_em_log_likelihood_never_decreases_and_stops_at_tolerance(fitted):
    ll = fitted.loglik
    assert fitted.iterations == len(ll) >= 2
    diffs = [b - a for a, b in zip(ll, ll[1:])]
    assert min(diffs) > -1e-5, diffs  # monotone up to float32 rounding
    assert ll[-1] > ll[0]
    assert fitted.iterations < 150 and diffs[-1] < 1e-5  # stopped because the gain fell below tol


def test_em_log_likelihood_is_the_mixture_log_likelihood(planted):
    """The recorded value is the mean of ``log sum_k pi_k exp(kappa mu_k . x)`` under the parameters *before*
    the last M-step; one round from a known start can be checked by hand."""
    x, _, _ = planted
    fit = fit_vmf_mixture(x, 6, 60.0, seed=0, max_iter=1)
    g = torch.Generator().manual_seed(0)
    start = kmeans_pp_init(x, 6, g)
    want = torch.logsumexp(60.0 * x @ start.T + math.log(1 / 6), dim=1).mean()
    assert fit.iterations == 1
    assert fit.loglik[0] == pytest.approx(float(want), rel=1e-5)


def test_same_seed_same_fit(planted, fitted):
    x, _, _ = planted
    again = fit_vmf_mixture(x, 6, 60.0, seed=0)
    assert torch.equal(again.means, fitted.means) and torch.equal(again.weights, fitted.weights)
    assert again.loglik == fitted.loglik
    # another seed starts elsewhere (EM may then stop in another local optimum: seed 1 merges the 5% cluster
    # into a neighbour here, at a lower likelihood than seed 0's solution)
    other = fit_vmf_mixture(x, 6, 60.0, seed=1)
    assert other.loglik[0] != fitted.loglik[0]
    assert other.loglik[-1] <= fitted.loglik[-1] + 1e-6


def test_chunked_e_step_gives_the_same_fit(planted, fitted):
    """Same iterations and parameters up to float32 summation order (measured: 2e-7, not bit-identical)."""
    x, _, _ = planted
    chunked = fit_vmf_mixture(x, 6, 60.0, seed=0, chunk=257)  # 10 chunks, the last one partial
    assert chunked.iterations == fitted.iterations
    torch.testing.assert_close(chunked.means, fitted.means, rtol=0, atol=1e-5)
    torch.testing.assert_close(chunked.weights, fitted.weights, rtol=0, atol=1e-6)
    assert chunked.loglik == pytest.approx(fitted.loglik, abs=1e-5)


def test_fit_normalises_its_input_and_checks_shapes(planted, fitted):
    x, _, _ = planted
    scaled = x * torch.linspace(0.5, 3.0, x.shape[0])[:, None]  # lengths do not matter, only directions
    fit = fit_vmf_mixture(scaled, 6, 60.0, seed=0)
    torch.testing.assert_close(fit.means, fitted.means, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"expected \(N, D\) features, got shape \(3, 4, 5\)"):
        fit_vmf_mixture(torch.randn(3, 4, 5), 2, 10.0)
    with pytest.raises(ValueError, match="cannot seed 5 clusters from 3 vectors"):
        fit_vmf_mixture(torch.randn(3, 4), 5, 10.0)


def test_kmeans_pp_init_picks_distinct_data_rows():
    x, _, _ = planted_data(n=300, seed=2)
    g = torch.Generator().manual_seed(0)
    c = kmeans_pp_init(x, 6, g)
    assert c.shape == (6, DIM)
    rows = [int(torch.nonzero((x == ci).all(1))[0]) for ci in c]  # every centre is a row of x
    assert len(set(rows)) == 6
    assert torch.equal(kmeans_pp_init(x, 6, torch.Generator().manual_seed(0)), c)


def test_activation_maps_known_values():
    means = torch.eye(3)  # concepts along the axes
    feats = torch.zeros(3, 1, 2)
    feats[:, 0, 0] = torch.tensor([2.0, 0.0, 0.0])  # along concept 0 (length 2: normalised away)
    feats[:, 0, 1] = torch.tensor([0.0, 1.0, 1.0])  # halfway between concepts 1 and 2
    cos = cosine_map(feats, means)
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(cos[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(cos[:, 0, 1], torch.tensor([0.0, r, r]))
    la = log_activations(feats, means, 20.0)
    torch.testing.assert_close(la, 20.0 * cos)
    d = concept_distribution(la)
    torch.testing.assert_close(d.sum(0), torch.ones(1, 2))
    e = math.exp(20.0)
    torch.testing.assert_close(d[:, 0, 0], torch.tensor([e / (e + 2), 1 / (e + 2), 1 / (e + 2)]))
