"""von Mises-Fisher mixtures with a fixed, shared concentration, fitted by EM (batched torch).

With unit vectors ``f`` and means ``mu_k`` and one concentration ``kappa`` for all components,
``log p(f | k) = kappa * mu_k . f - log Z(kappa)``; ``Z`` is shared and cancels in responsibilities.
The E-step is chunked so hundreds of thousands of vectors fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from occseg.distributed.collectives import map_chunks
from occseg.distributed.context import DistContext


@dataclass
class VMFFit:
    """A fitted mixture: unit means ``(K, D)``, weights ``(K,)`` and the mean log-likelihood per EM round."""

    means: torch.Tensor
    weights: torch.Tensor
    kappa: float
    loglik: list[float] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.loglik)


#: vectors per chunk of the EM's E-step (:func:`fit_vmf_mixture`): under torchrun each chunk is computed by one
#: rank, so a few thousand vectors (the concepts' sample of 250 boxes: about 19 000) are already shared
VMF_CHUNK = 4096


def kmeans_pp_init(x: torch.Tensor, k: int, generator: torch.Generator, chunk: int = 65536) -> torch.Tensor:
    """k-means++ seeding on cosine distance ``1 - x.c`` for unit rows of ``x``; returns ``(k, D)``."""
    n = x.shape[0]
    if n < k:
        raise ValueError(f"cannot seed {k} clusters from {n} vectors")
    first = int(torch.randint(n, (1,), generator=generator, device="cpu"))
    centers = [x[first]]
    dist = (1.0 - _chunked_matmul(x, x[first : first + 1], chunk).squeeze(1)).clamp_min(0)
    for _ in range(1, k):
        total = float(dist.sum())
        if total <= 0:
            idx = int(torch.randint(n, (1,), generator=generator, device="cpu"))
        else:
            probs = (dist / total).double().cpu()
            idx = int(torch.multinomial(probs, 1, generator=generator))
        centers.append(x[idx])
        d_new = (1.0 - _chunked_matmul(x, x[idx : idx + 1], chunk).squeeze(1)).clamp_min(0)
        dist = torch.minimum(dist, d_new)
    return torch.stack(centers)


def _chunked_matmul(x: torch.Tensor, c: torch.Tensor, chunk: int) -> torch.Tensor:
    return torch.cat([x[i : i + chunk] @ c.T for i in range(0, x.shape[0], chunk)])


def fit_vmf_mixture(
    x: torch.Tensor,
    k: int,
    kappa: float,
    *,
    max_iter: int = 150,
    tol: float = 1e-5,
    seed: int = 0,
    chunk: int = VMF_CHUNK,
    dist: DistContext | None = None,
) -> VMFFit:
    """Fit ``k`` vMF components with fixed ``kappa`` to the rows of ``x`` (normalised here).

    E-step: ``r_nk ∝ pi_k exp(kappa mu_k . x_n)``; M-step: ``pi = mean r``, ``mu = normalise(sum r x)``.
    Stops when the mean log-likelihood gains less than ``tol``. Deterministic for a given seed.
    ``dist``: under torchrun, every rank holds the same ``x`` and computes the E-step of its share of the chunks;
    the chunks' sufficient statistics are added in chunk order, so the fit is bitwise the one-process fit.
    """
    if x.ndim != 2:
        raise ValueError(f"expected (N, D) features, got shape {tuple(x.shape)}")
    x = F.normalize(x.float(), dim=1)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    means = kmeans_pp_init(x, k, gen, chunk)
    log_w = torch.full((k,), -float(torch.log(torch.tensor(float(k)))), device=x.device)
    history: list[float] = []
    for _ in range(max_iter):
        resp_sum = torch.zeros(k, device=x.device)
        weighted = torch.zeros_like(means)
        ll = 0.0
        n_chunks = -(-x.shape[0] // chunk)
        for stats in map_chunks(dist, n_chunks, partial(_e_step, x, chunk, means, log_w, kappa)):
            resp_sum += stats[:k]
            weighted += stats[k:-1].view_as(means)
            ll += float(stats[-1])
        history.append(ll / x.shape[0])
        # Empty components are re-seeded at the worst-explained vector so K stays meaningful.
        means = F.normalize(weighted, dim=1)
        empty = resp_sum < 1e-8
        if bool(empty.any()):
            scores = torch.cat([(x[i : i + chunk] @ means.T).max(1).values for i in range(0, x.shape[0], chunk)])
            worst = torch.argsort(scores)[: int(empty.sum())]
            means[empty] = x[worst]
            resp_sum[empty] = 1.0
        log_w = torch.log(resp_sum / resp_sum.sum())
        if len(history) > 1 and history[-1] - history[-2] < tol:
            break
    return VMFFit(means=means, weights=log_w.exp(), kappa=kappa, loglik=history)


def _e_step(
    x: torch.Tensor, chunk: int, means: torch.Tensor, log_w: torch.Tensor, kappa: float, i: int
) -> torch.Tensor:
    """Chunk ``i``'s sufficient statistics, flat: responsibilities summed ``(K,)``, responsibility-weighted sums of
    the vectors ``(K * D,)`` and the summed log-normaliser (the log-likelihood up to a constant)."""
    xb = x[i * chunk : (i + 1) * chunk]
    logits = kappa * (xb @ means.T) + log_w
    lse = torch.logsumexp(logits, dim=1, keepdim=True)
    r = torch.exp(logits - lse)
    return torch.cat([r.sum(0), (r.T @ xb).flatten(), lse.sum().reshape(1)])


def cosine_map(features: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Cosine of each feature cell with each mean: ``(C, h, w)`` x ``(K, C)`` -> ``(K, h, w)``."""
    f = F.normalize(features, dim=0)
    return torch.einsum("kc,chw->khw", means, f)


def log_activations(features: torch.Tensor, means: torch.Tensor, kappa: float) -> torch.Tensor:
    """Unnormalised vMF log-likelihoods ``kappa * mu_k . f_i`` as ``(K, h, w)``."""
    return kappa * cosine_map(features, means)


def concept_distribution(log_act: torch.Tensor) -> torch.Tensor:
    """Per-cell L1-normalised activations (softmax over concepts of the log activations), ``(K, h, w)``."""
    return torch.softmax(log_act, dim=0)
