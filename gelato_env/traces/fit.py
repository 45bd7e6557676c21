"""Fit the entropy -> acceptance map alpha^(H) = a * exp(b * H) and summarize a trace.

The survival exit rule and GELATO's outer loop use alpha^(H) = min(1, a * exp(b * H)) as the
probability that a draft token with generative entropy H (nats) is accepted (DESIGN.md §2, §5;
paper-reported a = 1.0, b = -0.35 for Qwen2.5-0.5B -> 7B [S]). Each recorded (position, step)
entry of a trace is one sample (H, acceptance): the greedy match bit or min(1, p/q).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gelato_env.traces.store import Trace

FloatArray = npt.NDArray[np.float64]

FIT_METHODS = ("binned_log", "nonlinear")


@dataclass(frozen=True, slots=True)
class AlphaFit:
    """A fitted alpha^(H) = a * exp(b * H).

    Attributes:
        a: scale (acceptance extrapolated to H = 0).
        b: entropy slope, 1/nats (negative when uncertain drafts are rejected more).
        r2: coefficient of determination of the fit, on the binned means (``binned_log``) or
            on the raw samples (``nonlinear``), in linear acceptance space.
        n_samples: (H, acceptance) samples used.
        n_bins: entropy bins (equal-count quantile bins).
        method: ``binned_log`` (weighted least squares of ln(mean acceptance) on mean H per
            bin) or ``nonlinear`` (least squares of a * exp(b * H) on the raw samples).
    """

    a: float
    b: float
    r2: float
    n_samples: int
    n_bins: int
    method: str

    def alpha(self, entropy: FloatArray) -> FloatArray:
        """alpha^(H) = min(1, a * exp(b * H)) for entropies in nats, any shape."""
        return np.minimum(1.0, self.a * np.exp(self.b * np.asarray(entropy, dtype=np.float64)))


def _r2(y: FloatArray, y_hat: FloatArray, weights: FloatArray | None = None) -> float:
    w = np.ones_like(y) if weights is None else weights
    mean = np.average(y, weights=w)
    total = float(np.sum(w * (y - mean) ** 2))
    return 1.0 - float(np.sum(w * (y - y_hat) ** 2)) / total if total > 0 else float("nan")


def entropy_bins(
    entropy: FloatArray, accept: FloatArray, n_bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Equal-count entropy bins: mean H (nats), mean acceptance and count per bin, each ``(k,)``.

    Ties in H can merge bins, so ``k <= n_bins``.
    """
    edges = np.unique(np.quantile(entropy, np.linspace(0.0, 1.0, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, entropy, side="right") - 1, 0, max(len(edges) - 2, 0))
    count = np.bincount(which, minlength=len(edges) - 1).astype(np.float64)
    keep = count > 0
    h_mean = np.bincount(which, weights=entropy, minlength=len(count))[keep] / count[keep]
    a_mean = np.bincount(which, weights=accept, minlength=len(count))[keep] / count[keep]
    return h_mean, a_mean, count[keep]


def fit_alpha(
    entropy: npt.ArrayLike,
    accept: npt.ArrayLike,
    *,
    n_bins: int = 20,
    method: str = "binned_log",
) -> AlphaFit:
    """Fit alpha^(H) = a * exp(b * H) to (entropy, acceptance) samples.

    Args:
        entropy: shape ``(n,)``, entropies in nats.
        accept: shape ``(n,)``, acceptance outcomes or probabilities in [0, 1].
        n_bins: equal-count entropy bins (``binned_log``; also the start of ``nonlinear``).
        method: one of :data:`FIT_METHODS`.

    Raises:
        ValueError: bad shapes/values, an unknown method, or too few distinct entropies.
    """
    h = np.asarray(entropy, dtype=np.float64).ravel()
    acc = np.asarray(accept, dtype=np.float64).ravel()
    if h.shape != acc.shape:
        raise ValueError(f"entropy and accept must have the same size, got {h.size} and {acc.size}")
    if method not in FIT_METHODS:
        raise ValueError(f"method must be one of {FIT_METHODS}, got {method!r}")
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    if h.size and (acc.min() < 0.0 or acc.max() > 1.0):
        raise ValueError(f"accept must lie in [0, 1], got range [{acc.min()}, {acc.max()}]")
    h_mean, a_mean, count = entropy_bins(h, acc, n_bins)
    ok = a_mean > 0  # ln(0) is undefined; an all-rejected bin carries no slope information
    if ok.sum() < 2:
        raise ValueError(f"need >= 2 entropy bins with nonzero acceptance, got {int(ok.sum())}")
    # weighted least squares of ln(mean acceptance) on mean H: ln a + b * H
    b, log_a = np.polyfit(h_mean[ok], np.log(a_mean[ok]), 1, w=np.sqrt(count[ok]))
    a = float(np.exp(log_a))
    if method == "binned_log":
        r2 = _r2(a_mean, a * np.exp(b * h_mean), count)
        return AlphaFit(a, float(b), r2, int(h.size), len(h_mean), method)
    from scipy.optimize import curve_fit

    def model(x: FloatArray, a_: float, b_: float) -> FloatArray:
        return a_ * np.exp(b_ * x)

    (a_nl, b_nl), _ = curve_fit(model, h, acc, p0=(a, float(b)), maxfev=10_000)
    r2 = _r2(acc, model(h, a_nl, b_nl))
    return AlphaFit(float(a_nl), float(b_nl), r2, int(h.size), len(h_mean), method)


def fit_alpha_from_trace(trace: Trace, *, n_bins: int = 20, method: str = "binned_log") -> AlphaFit:
    """Fit alpha^(H) on every (position, step) entry of a trace (see :func:`fit_alpha`)."""
    return fit_alpha(
        np.asarray(trace.entropy, dtype=np.float64).ravel(),
        np.asarray(trace.accept_prob, dtype=np.float64).ravel(),
        n_bins=n_bins,
        method=method,
    )


@dataclass(frozen=True)
class TraceSummary:
    """Acceptance statistics of a trace (G = gamma_max).

    Attributes:
        n_prompts: recorded prompts.
        n_positions: recorded output positions.
        acceptance: mean acceptance over all (position, step) entries.
        entropy_quintile_edges: shape ``(6,)``, entropy quintile edges, nats.
        acceptance_by_entropy_quintile: shape ``(5,)``, mean acceptance per entropy quintile.
        acceptance_by_step: shape ``(G,)``, mean acceptance of draft step j (unconditional).
        conditional_acceptance_by_step: shape ``(G,)``, P(step j accepted | steps < j accepted).
        mean_tokens_by_gamma: shape ``(G + 1,)``, expected tokens per round E[N] with a fixed
            draft length gamma = 0..G and no early exit (ignoring the end-of-output cap).
        spearman_entropy: Spearman rank correlation of entropy and acceptance.
        spearman_max_prob: Spearman rank correlation of draft max-prob and acceptance.
    """

    n_prompts: int
    n_positions: int
    acceptance: float
    entropy_quintile_edges: FloatArray
    acceptance_by_entropy_quintile: FloatArray
    acceptance_by_step: FloatArray
    conditional_acceptance_by_step: FloatArray
    mean_tokens_by_gamma: FloatArray
    spearman_entropy: float
    spearman_max_prob: float


def summarize(trace: Trace) -> TraceSummary:
    """Summary statistics of a trace (see :class:`TraceSummary`)."""
    from scipy.stats import spearmanr

    acc = np.asarray(trace.accept_prob, dtype=np.float64)  # (n_pos, G)
    h = np.asarray(trace.entropy, dtype=np.float64)
    mp = np.asarray(trace.max_prob, dtype=np.float64)
    edges = np.quantile(h, np.linspace(0.0, 1.0, 6))
    quintile = np.clip(np.searchsorted(edges, h.ravel(), side="right") - 1, 0, 4)
    counts = np.bincount(quintile, minlength=5)
    by_quintile = np.bincount(quintile, weights=acc.ravel(), minlength=5) / np.maximum(counts, 1)
    # survival[:, k] = P(steps 1..k+1 all accepted): a product of bits (greedy) or of min(1, p/q)
    survival = np.cumprod(acc, axis=1)  # (n_pos, G)
    mean_survival = survival.mean(axis=0)
    previous = np.concatenate([[1.0], mean_survival[:-1]])
    conditional = np.divide(
        mean_survival, previous, out=np.full_like(mean_survival, np.nan), where=previous > 0
    )
    mean_tokens = 1.0 + np.concatenate([[0.0], np.cumsum(mean_survival)])

    def rank_corr(x: FloatArray) -> float:
        if np.ptp(x) == 0 or np.ptp(acc) == 0:
            return float("nan")  # undefined for a constant input
        return float(spearmanr(x.ravel(), acc.ravel()).statistic)

    return TraceSummary(
        n_prompts=trace.n_prompts,
        n_positions=trace.n_positions,
        acceptance=float(acc.mean()),
        entropy_quintile_edges=edges,
        acceptance_by_entropy_quintile=by_quintile,
        acceptance_by_step=acc.mean(axis=0),
        conditional_acceptance_by_step=conditional,
        mean_tokens_by_gamma=mean_tokens,
        spearman_entropy=rank_corr(h),
        spearman_max_prob=rank_corr(mp),
    )
