"""Diagonal-covariance GMM acoustic model: statistics, re-estimation and mixing up, in numpy.

Why not the bindings' own ``AccumAmDiagGmm`` / ``mle_am_diag_gmm_update`` / ``split_by_count``:

* accumulating frame by frame from Python costs a call per frame (an hour is 360,000 frames, times
  forty iterations); here the E-step is a few matrix products per pdf;
* the bindings hand out copies of per-pdf accumulators, so statistics gathered elsewhere (in worker
  processes) cannot be fed back into them;
* their Gaussian splitting draws from an unseeded generator, so the model, and the alignments, would
  differ from run to run.

The arithmetic follows Kaldi's (``gmm-acc-stats-ali``, ``gmm-est``): posteriors of each pdf's
components for the frames aligned to it, maximum-likelihood means and variances with a variance
floor, Gaussians with too little occupancy removed, and mixing up by splitting the heaviest
component with a small perturbation of its mean, Gaussians shared out to pdfs by occupancy to the
power ``power``. The model is converted to the bindings' ``AmDiagGmm`` only for decoding.

Statistics are returned as fixed-point integers (:func:`quantise`): integer sums do not depend on
their order, so the model is the same whatever the number of worker processes.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from ._backend import khg

STATS_SCALE = 2.0**24  # fixed-point resolution of the statistics (6e-8)
_STATS_LIMIT = 2.0**62 / STATS_SCALE
LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass
class GmmModel:
    """One diagonal GMM per pdf: ``weights[p]`` (G,), ``means[p]`` and ``variances[p]`` (G, D), float64."""

    weights: list[np.ndarray]
    means: list[np.ndarray]
    variances: list[np.ndarray]

    @property
    def num_pdfs(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return int(self.means[0].shape[1])

    @property
    def num_gauss(self) -> int:
        return int(sum(w.size for w in self.weights))

    def offsets(self) -> np.ndarray:
        """Row of each pdf's first component in the flat statistics arrays; ``offsets[-1]`` is the total."""
        return np.concatenate([[0], np.cumsum([w.size for w in self.weights])]).astype(np.int64)

    def to_am(self, boost: dict[int, float] | None = None) -> khg.AmDiagGmm:
        """The bindings' acoustic model, for decoding; ``boost`` scales the weights of some pdfs.

        Scaling a pdf's weights by ``b`` adds ``log b`` to its log-likelihood on every frame (Kaldi's
        ``gmm-boost-silence``): it makes the decoder readier to choose those pdfs.
        """
        am = khg.AmDiagGmm()
        boost = boost or {}
        for p, (w, mu, var) in enumerate(zip(self.weights, self.means, self.variances, strict=True)):
            gmm = khg.DiagGmm(nmix=w.size, dim=self.dim)
            gmm.set_weights((w * boost.get(p, 1.0)).astype(np.float32))
            gmm.set_invvars_and_means((1.0 / var).astype(np.float32), mu.astype(np.float32))
            gmm.compute_gconsts()
            am.add_pdf(gmm)
        return am


def init_model(num_pdfs: int, mean: np.ndarray, var: np.ndarray) -> GmmModel:
    """Flat start (``gmm-init-mono``): every pdf one Gaussian with the global mean and variance."""
    return GmmModel(
        [np.ones(1) for _ in range(num_pdfs)],
        [mean[None, :].astype(np.float64).copy() for _ in range(num_pdfs)],
        [var[None, :].astype(np.float64).copy() for _ in range(num_pdfs)],
    )


@dataclass(frozen=True)
class Scorer:
    """Per-pdf constants for fast log-likelihoods: ``ll = gconst + x @ m_iv.T + (x*x) @ nh_iv.T``."""

    gconst: list[np.ndarray]
    mean_invvar: list[np.ndarray]
    neg_half_invvar: list[np.ndarray]

    @classmethod
    def of(cls, model: GmmModel) -> Scorer:
        gconst, miv, nhiv = [], [], []
        for w, mu, var in zip(model.weights, model.means, model.variances, strict=True):
            inv = 1.0 / var
            gconst.append(
                np.log(np.maximum(w, 1e-300))
                - 0.5 * (np.sum(np.log(var) + mu * mu * inv, axis=1) + mu.shape[1] * LOG_2PI)
            )
            miv.append(mu * inv)
            nhiv.append(-0.5 * inv)
        return cls(gconst, miv, nhiv)

    def component_loglikes(self, pdf: int, x: np.ndarray) -> np.ndarray:
        """(frames, components) log-likelihoods of ``x`` (float64) under the components of ``pdf``."""
        return self.gconst[pdf] + x @ self.mean_invvar[pdf].T + (x * x) @ self.neg_half_invvar[pdf].T


def accumulate(scorer: Scorer, offsets: np.ndarray, feats: np.ndarray, pdfs: np.ndarray) -> tuple[np.ndarray, float]:
    """E-step for frames ``feats`` (N, D) aligned to ``pdfs`` (N,).

    Returns the statistics (total components, 1 + 2D) as [occupancy, sum x, sum x^2] per component,
    and the total log-likelihood of the frames.
    """
    dim = feats.shape[1]
    stats = np.zeros((int(offsets[-1]), 1 + 2 * dim))
    if pdfs.size == 0:
        return stats, 0.0
    order = np.argsort(pdfs, kind="stable")
    sorted_pdfs = pdfs[order]
    cuts = np.flatnonzero(np.diff(sorted_pdfs)) + 1
    total_ll = 0.0
    for chunk in np.split(order, cuts):
        pdf = int(pdfs[chunk[0]])
        x = feats[chunk].astype(np.float64)
        ll = scorer.component_loglikes(pdf, x)
        peak = ll.max(axis=1, keepdims=True)
        post = np.exp(ll - peak)
        norm = post.sum(axis=1, keepdims=True)
        post /= norm
        total_ll += float(np.sum(peak[:, 0] + np.log(norm[:, 0])))
        rows = slice(int(offsets[pdf]), int(offsets[pdf + 1]))
        stats[rows, 0] += post.sum(axis=0)
        stats[rows, 1 : 1 + dim] += post.T @ x
        stats[rows, 1 + dim :] += post.T @ (x * x)
    return stats, total_ll


def quantise(values: np.ndarray) -> np.ndarray:
    """Fixed-point int64 copy of ``values`` (order-independent sums); raises if out of range."""
    if values.size and float(np.max(np.abs(values))) >= _STATS_LIMIT:
        raise OverflowError("accumulated statistics exceed the fixed-point range")
    return np.rint(values * STATS_SCALE).astype(np.int64)


def dequantise(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) / STATS_SCALE


def update(
    model: GmmModel, stats: np.ndarray, min_occupancy: float = 10.0, min_variance: float = 0.001
) -> tuple[GmmModel, np.ndarray]:
    """M-step (``gmm-est``): new model and per-pdf occupancies.

    Components with occupancy at or below ``min_occupancy`` are removed, unless that would remove all of a
    pdf's components, in which case the pdf keeps its previous parameters (as Kaldi does).
    """
    offsets = model.offsets()
    dim = model.dim
    weights, means, variances = [], [], []
    occs = np.zeros(model.num_pdfs)
    for p in range(model.num_pdfs):
        block = stats[offsets[p] : offsets[p + 1]]
        occ = block[:, 0]
        occs[p] = occ.sum()
        keep = occ > min_occupancy
        if not keep.any():
            weights.append(model.weights[p].copy())
            means.append(model.means[p].copy())
            variances.append(model.variances[p].copy())
            continue
        occ_k = occ[keep]
        mu = block[keep, 1 : 1 + dim] / occ_k[:, None]
        var = block[keep, 1 + dim :] / occ_k[:, None] - mu * mu
        weights.append(occ_k / occ_k.sum())
        means.append(mu)
        variances.append(np.maximum(var, min_variance))
    return GmmModel(weights, means, variances), occs


def split_targets(occs: np.ndarray, current: np.ndarray, total: int, power: float, min_count: float) -> np.ndarray:
    """How many Gaussians each pdf should have for ``total`` in all: shared by ``occ ** power``.

    Greedy: every pdf starts with one; the next Gaussian goes to the pdf with the largest
    ``occ ** power / count``, while each Gaussian would keep at least ``min_count`` frames. Never fewer
    than a pdf has now.
    """
    counts = np.ones(occs.size, dtype=np.int64)
    weight = np.power(np.maximum(occs, 0.0), power)
    heap = [(-weight[p], p) for p in range(occs.size) if occs[p] / 2 >= min_count]
    heapq.heapify(heap)
    remaining = total - occs.size
    while remaining > 0 and heap:
        _, p = heapq.heappop(heap)
        counts[p] += 1
        remaining -= 1
        if occs[p] / (counts[p] + 1) >= min_count:
            heapq.heappush(heap, (-weight[p] / counts[p], p))
    return np.maximum(counts, current)


def _split_pdf(w: np.ndarray, mu: np.ndarray, var: np.ndarray, target: int, perturb: float, rng: np.random.Generator):
    w, mu, var = list(w), list(mu), list(var)
    while len(w) < target:
        k = int(np.argmax(w))
        shift = perturb * np.sqrt(var[k]) * rng.standard_normal(var[k].size)
        w[k] /= 2.0
        w.append(w[k])
        mu.append(mu[k] + shift)
        mu[k] = mu[k] - shift
        var.append(var[k].copy())
    return np.array(w), np.array(mu), np.array(var)


def mix_up(
    model: GmmModel,
    occs: np.ndarray,
    total: int,
    rng: np.random.Generator,
    perturb: float = 0.01,
    power: float = 0.25,
    min_count: float = 20.0,
) -> GmmModel:
    """Split components toward ``total`` Gaussians (``gmm-est --mix-up``), deterministically given ``rng``."""
    current = np.array([w.size for w in model.weights])
    targets = split_targets(occs, current, total, power, min_count)
    weights, means, variances = [], [], []
    for p in range(model.num_pdfs):
        w, mu, var = model.weights[p], model.means[p], model.variances[p]
        if targets[p] > w.size:
            w, mu, var = _split_pdf(w, mu, var, int(targets[p]), perturb, rng)
        weights.append(w)
        means.append(mu)
        variances.append(var)
    return GmmModel(weights, means, variances)
