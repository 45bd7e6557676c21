"""Fit the entropy -> acceptance map alpha^(H) = a * exp(b * H) and calibrate GELATO on it.

The survival exit rule and GELATO use alpha^(H) = min(1, a * exp(b * H)) as the
probability that a draft token with generative entropy H (nats) is accepted (docs/design.md §2, §5;
paper-reported a = 1.0, b = -0.35 for Qwen2.5-0.5B -> 7B [S]). Each recorded (position, step)
entry of a trace is one sample (H, acceptance): the greedy match bit or min(1, p/q).

Calibration on training prompts (GELATO, docs/design.md §5): :func:`pair_statistics` (the on-path
acceptance model, its mean and the mean top-p set size) and :func:`calibrate_entropy_bucket`
(the entropy-exit thresholds of a pair under a system model), so that nothing GELATO plans with
is hard-coded for one model pair.
"""

from __future__ import annotations

import math
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


# --------------------------------------------------------------------------------------------
# calibration on training prompts (GELATO's acceptance model, prior and exit thresholds)

CALIBRATION_OBJECTIVES = ("edp", "throughput", "efficiency")


def prompt_rows(trace: Trace, prompts: npt.ArrayLike | None = None) -> npt.NDArray[np.int64]:
    """Trace rows (output positions) of ``prompts`` (trace prompt indices; None: all), in order.

    Rows of prompt i are ``trace.prompt_offsets[i]:trace.prompt_offsets[i + 1]``.
    """
    offsets = np.asarray(trace.prompt_offsets, dtype=np.int64)
    if prompts is None:
        return np.arange(int(offsets[-1]), dtype=np.int64)
    index = np.asarray(prompts, dtype=np.int64).ravel()
    if index.size == 0:
        raise ValueError("prompts must not be empty")
    if index.min() < 0 or index.max() >= trace.n_prompts:
        raise ValueError(f"prompts must lie in [0, {trace.n_prompts}), got {index.tolist()}")
    return np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in index.tolist()])


@dataclass(frozen=True, slots=True)
class PairStatistics:
    """What a pair's training prompts say about its drafts (GELATO plans with these).

    Only the first draft step of each position is used: its context is the target's own prefix,
    which is the context of every token verification actually sees (a step-j entry whose
    previous steps matched has the same context as the step-1 entry j - 1 positions later; one
    after a mismatch is conditioned on a rejected token and never decides an acceptance).

    Attributes:
        fit: alpha^(H) = a exp(b H) fitted on the step-1 (H, acceptance) samples, with ``a``
            rescaled so that the mean of alpha^(H) over the samples equals their mean
            acceptance (``fit_alpha_on_path``).
        alpha_mean: mean step-1 acceptance, the per-token acceptance of a verified draft token.
        entropy_mean_nats: mean step-1 draft entropy, nats.
        topp_size_mean: mean top-p set size of a step-1 draft distribution, entries.
        n_prompts: prompts used.
        n_positions: positions (samples) used.
    """

    fit: AlphaFit
    alpha_mean: float
    entropy_mean_nats: float
    topp_size_mean: float
    n_prompts: int
    n_positions: int


def fit_alpha_on_path(
    entropy: npt.ArrayLike,
    accept: npt.ArrayLike,
    *,
    n_bins: int = 20,
    method: str = "binned_log",
    match_mean: bool = True,
) -> AlphaFit:
    """:func:`fit_alpha`, then ``a`` rescaled so that mean alpha^(H) = mean acceptance.

    A log-space fit of a exp(b H) is not mean-preserving (the bins weigh ln of means, and
    alpha^ is clipped at 1), so the mean predicted acceptance can miss the mean realized one by
    several percent; rescaling ``a`` (a few fixed-point steps, because of the clip) removes that
    offset without changing the entropy slope ``b``.
    """
    fit = fit_alpha(entropy, accept, n_bins=n_bins, method=method)
    if not match_mean:
        return fit
    h = np.asarray(entropy, dtype=np.float64).ravel()
    target = float(np.mean(np.asarray(accept, dtype=np.float64)))
    a = fit.a
    for _ in range(20):
        predicted = float(np.mean(np.minimum(1.0, a * np.exp(fit.b * h))))
        if predicted <= 0.0 or abs(predicted - target) < 1e-9:
            break
        a *= target / predicted
    return AlphaFit(a, fit.b, fit.r2, fit.n_samples, fit.n_bins, fit.method)


def pair_statistics(
    trace: Trace,
    prompts: npt.ArrayLike | None = None,
    *,
    n_bins: int = 20,
    method: str = "nonlinear",
) -> PairStatistics:
    """:class:`PairStatistics` of ``prompts`` (trace prompt indices; None: all).

    ``method="nonlinear"`` [D] (least squares on the raw samples) estimates E[acceptance | H]
    without the bias ``binned_log`` has when a bin spans a wide range of H (the log of a bin's
    mean acceptance is not the mean of its logs): on a synthetic trace with alpha = exp(-0.35 H)
    ``binned_log`` returned b = -0.28.
    """
    rows = prompt_rows(trace, prompts)
    h = np.asarray(trace.entropy[rows, 0], dtype=np.float64)
    acc = np.asarray(trace.accept_prob[rows, 0], dtype=np.float64)
    sizes = np.asarray(trace.topp_size[rows, 0], dtype=np.float64)
    n_prompts = trace.n_prompts if prompts is None else int(np.asarray(prompts).size)
    return PairStatistics(
        fit=fit_alpha_on_path(h, acc, n_bins=n_bins, method=method),
        alpha_mean=float(acc.mean()),
        entropy_mean_nats=float(h.mean()),
        topp_size_mean=float(sizes.mean()),
        n_prompts=n_prompts,
        n_positions=int(rows.size),
    )


@dataclass(frozen=True, slots=True)
class ExitCalibration:
    """Entropy-bucket thresholds chosen on training prompts (:func:`calibrate_entropy_bucket`).

    Attributes:
        threshold_nats: H_th, nats (``inf``: the best rule never exits).
        bucket_nats: Theta_th, nats.
        objective: what was maximized (:data:`CALIBRATION_OBJECTIVES`).
        score: the objective of the chosen rule.
        no_exit_score: the objective without early exit (same prompts and budget).
        mean_drafted: mean realized draft length per round of the chosen rule.
        n_rounds: rounds simulated for the chosen rule.
    """

    threshold_nats: float
    bucket_nats: float
    objective: str
    score: float
    no_exit_score: float
    mean_drafted: float
    n_rounds: int


def _leading_matches(accept: FloatArray, seed: int) -> npt.NDArray[np.int64]:
    """Per row, the leading accepted steps (greedy bits; sampled: one Bernoulli draw each)."""
    if np.all((accept == 0.0) | (accept == 1.0)):
        bits = accept >= 0.5
    else:
        bits = np.random.default_rng(seed).random(accept.shape) < accept
    return np.where(bits.all(axis=1), bits.shape[1], np.argmin(bits, axis=1)).astype(np.int64)


def simulate_rounds(
    trace: Trace,
    prompts: npt.ArrayLike | None,
    stop: npt.NDArray[np.int64],
    budget: int,
    latency_s: FloatArray,
    energy_j: FloatArray,
    *,
    seed: int = 0,
) -> tuple[float, float, float, int, int]:
    """Play every prompt start to end with a fixed budget and per-position stop indices.

    Args:
        trace: the trace.
        prompts: trace prompt indices (None: all).
        stop: shape ``(len(prompt_rows(trace, prompts)),)``, the exit rule's stop index per
            row over all G recorded steps (``realized_lengths`` with cap G).
        budget: the drafting budget gamma~ of every round.
        latency_s: shape ``(G + 1,)``, round latency per realized gamma, s.
        energy_j: shape ``(G + 1,)``, round device energy per realized gamma, J.
        seed: seed of the acceptance draws of a sampled (T > 0) trace.

    Returns:
        ``(tokens, latency_s, energy_j, drafted, rounds)`` summed over all prompts.
    """
    rows = prompt_rows(trace, prompts)
    accept = np.asarray(trace.accept_prob[rows], dtype=np.float64)
    lead = _leading_matches(accept, seed).tolist()
    stops = np.asarray(stop, dtype=np.int64).tolist()
    lat, en = np.asarray(latency_s).tolist(), np.asarray(energy_j).tolist()
    index = range(trace.n_prompts) if prompts is None else np.asarray(prompts).ravel().tolist()
    lengths = [int(trace.lengths[i]) for i in index]
    tokens = drafted = rounds = 0
    time_s = joules = 0.0
    base = 0
    for length in lengths:
        t = 0
        while t < length:
            cap = min(budget, length - t - 1)
            gamma = min(stops[base + t], cap)
            n = min(lead[base + t], gamma) + 1
            n = min(n, length - t)
            tokens += n
            drafted += gamma
            rounds += 1
            time_s += lat[gamma]
            joules += en[gamma]
            t += n
        base += length
    return float(tokens), time_s, joules, drafted, rounds


def _objective(name: str, tokens: float, time_s: float, energy_j: float) -> float:
    if name == "throughput":
        return tokens / time_s
    if name == "efficiency":
        return tokens / energy_j
    return tokens * tokens / (time_s * energy_j)  # 1 / (energy per token x delay per token)


def calibrate_entropy_bucket(
    trace: Trace,
    prompts: npt.ArrayLike | None,
    latency_s: npt.ArrayLike,
    energy_j: npt.ArrayLike,
    *,
    budget: int | None = None,
    objective: str = "throughput",
    threshold_quantiles: tuple[float, ...] = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    bucket_scales: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0),
) -> ExitCalibration:
    """Choose the entropy-bucket thresholds (H_th, Theta_th) on training prompts.

    Every candidate rule plays every prompt from start to end at a fixed budget (``budget``,
    default G: the exit alone shortens drafting) through the recorded acceptances, with each
    round's latency and device energy taken from the system model (``latency_s``,
    ``energy_j`` per realized gamma, e.g. a :class:`agents.forecast.RoundCostModel` forecast at
    the mean uplink rate). The candidate maximizing ``objective`` wins:

    * ``throughput`` [D]: tokens / s. The exit's job is to stop drafts that waste time; the
      energy budget is the outer loop's (GELATO's queue prices energy round by round, so a
      static exit that also saves energy leaves budget unspent: on a synthetic trace with
      alpha = exp(-0.35 H), ``edp`` thresholds spent 77 % of a binding budget and cost GELATO
      5 % throughput against ``throughput`` thresholds);
    * ``edp``: tokens^2 / (time x energy), the inverse energy-delay product per token
      (Horowitz et al., 1994 [A]); ``efficiency``: tokens / J.

    Candidates [D]: H_th at ``threshold_quantiles`` of the training step-1 entropies times
    Theta_th = ``bucket_scales`` x (the entropies' standard deviation), plus "no exit"
    (H_th = inf). The entropy scale is the pair's own, so the same grid serves a toy pair
    (several nats) and Qwen2.5 (mostly below 1 nat).
    """
    from gelato_env.sd.exit_rules import EntropyBucket, realized_lengths

    if objective not in CALIBRATION_OBJECTIVES:
        raise ValueError(f"objective must be one of {CALIBRATION_OBJECTIVES}, got {objective!r}")
    lat = np.asarray(latency_s, dtype=np.float64)
    en = np.asarray(energy_j, dtype=np.float64)
    g = trace.gamma_max if budget is None else int(budget)
    if lat.shape != en.shape or lat.shape[0] < g + 1:
        raise ValueError(
            f"latency_s and energy_j must have shape (>= {g + 1},), got {lat.shape}, {en.shape}"
        )
    rows = prompt_rows(trace, prompts)
    h = np.asarray(trace.entropy[rows, :g], dtype=np.float64)
    p = np.asarray(trace.max_prob[rows, :g], dtype=np.float64)
    cap = np.full(rows.size, g, dtype=np.int64)
    h1 = h[:, 0]
    spread = float(np.std(h1)) or 1.0
    candidates = [(math.inf, 0.0)] + [
        (float(np.quantile(h1, q)), s * spread) for q in threshold_quantiles for s in bucket_scales
    ]
    best: tuple[float, float, float, float, int] | None = None
    no_exit = math.nan
    for th, bucket in candidates:
        if math.isinf(th):
            stop = cap.copy()
        else:
            stop = realized_lengths(EntropyBucket(th, bucket), h, p, cap)
        tokens, time_s, joules, drafted, rounds = simulate_rounds(trace, prompts, stop, g, lat, en)
        score = _objective(objective, tokens, time_s, joules)
        if math.isinf(th):
            no_exit = score
        if best is None or score > best[2]:
            best = (th, bucket, score, drafted / rounds, rounds)
    assert best is not None
    th, bucket, score, mean_drafted, rounds = best
    return ExitCalibration(th, bucket, objective, score, no_exit, mean_drafted, rounds)


@dataclass(frozen=True, slots=True)
class WindowCalibration:
    """The running-mean window that best predicts the next draft token's acceptance.

    Attributes:
        window_tokens: the chosen effective window, tokens.
        mse: mean squared error of the prediction per candidate window, ``{window: mse}``.
        n_positions: positions predicted.
    """

    window_tokens: float
    mse: dict[float, float]
    n_positions: int


def calibrate_acceptance_window(
    trace: Trace,
    prompts: npt.ArrayLike | None,
    fit: AlphaFit,
    prior: float,
    *,
    alpha_max: float = 0.99,
    windows: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
) -> WindowCalibration:
    """Choose the window of GELATO's running mean of alpha^(H_i) on training prompts [D].

    Each prompt is walked position by position from the prior: the running mean over the
    previous positions' alpha^(H) (an exponentially weighted mean, weight 1 / window) predicts
    the acceptance of the next position's first draft token (its recorded step-1 acceptance);
    the window with the least mean squared error wins. A short window follows the context
    (acceptance persists over a few tokens: right after a rejection the next token is harder
    than average), a long one averages noise away; the pair decides.
    """
    rows = prompt_rows(trace, prompts)
    h = np.asarray(trace.entropy[rows, 0], dtype=np.float64)
    alpha = np.minimum(alpha_max, fit.a * np.exp(fit.b * h)).tolist()
    accept = np.asarray(trace.accept_prob[rows, 0], dtype=np.float64).tolist()
    index = range(trace.n_prompts) if prompts is None else np.asarray(prompts).ravel().tolist()
    lengths = [int(trace.lengths[i]) for i in index]
    mse: dict[float, float] = {}
    for window in windows:
        w = 1.0 / window
        total, base = 0.0, 0
        for length in lengths:
            value = prior
            for s in range(base, base + length):
                total += (value - accept[s]) ** 2
                value += w * (alpha[s] - value)
            base += length
        mse[window] = total / max(len(alpha), 1)
    best = min(mse, key=lambda k: mse[k])
    return WindowCalibration(best, mse, len(alpha))
