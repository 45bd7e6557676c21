"""Per-token early-exit rules for drafting (docs/design.md §2, step 2).

A rule looks at the statistics of the draft tokens drafted so far in the current round -- the
generative entropy H_i (nats) and the max-probability of each q_i -- and decides whether drafting
stops *after* token i (token i is sent for verification; token i+1 is not drafted). Rules are
causal: the decision after token i depends only on tokens 1..i, so the live engine (which drafts
one token at a time) and trace replay (which sees all recorded tokens at once) agree exactly.

All rules are frozen dataclasses; their state (the entropy bucket Theta, the survival product)
is recomputed from the round's statistics, so nothing leaks between rounds. This module imports
no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@runtime_checkable
class ExitRule(Protocol):
    """Decides when drafting stops within a round."""

    name: ClassVar[str]

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First 1-based index i at which drafting stops after token i, or 0 if it never does.

        Args:
            entropy: shape ``(n,)``, entropy of q_1..q_n in nats.
            max_prob: shape ``(n,)``, max-probability of q_1..q_n.
        """
        ...


def realized_length(rule: ExitRule, entropy: FloatArray, max_prob: FloatArray, budget: int) -> int:
    """Realized draft length gamma <= ``budget`` under ``rule``, given the first tokens' stats.

    >>> realized_length(EntropyThreshold(1.0), np.array([0.2, 1.5, 0.1]), np.ones(3), 3)
    2
    """
    if budget <= 0:
        return 0
    stop = rule.stop_after(entropy[:budget], max_prob[:budget])
    return stop if stop else budget


def _first_true(mask: npt.NDArray[np.bool_]) -> int:
    hits = np.flatnonzero(mask)
    return int(hits[0]) + 1 if hits.size else 0


def _check_finite(name: str, value: float, *, positive: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


@dataclass(frozen=True, slots=True)
class NoExit:
    """Never stop early: draft the full budget."""

    name: ClassVar[str] = "none"

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """Always 0 (no early exit)."""
        return 0


@dataclass(frozen=True, slots=True)
class EntropyThreshold:
    """Stop after the first token whose entropy exceeds ``threshold_nats`` (H_i > H_th)."""

    threshold_nats: float = 1.5  # [D] about the median draft entropy on the default pair
    name: ClassVar[str] = "entropy_threshold"

    def __post_init__(self) -> None:
        _check_finite("threshold_nats", self.threshold_nats)

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First i with H_i > H_th."""
        return _first_true(entropy > self.threshold_nats)


@dataclass(frozen=True, slots=True)
class EntropyBucket:
    """GELATO's generative-entropy bucket (docs/design.md §2; reconstructed [S]).

    Theta_i = max(0, Theta_{i-1} + H_i - H_th), Theta_0 = 0 each round; stop after token i when
    Theta_i > Theta_th. One very uncertain token or a run of moderately uncertain ones exits.
    """

    threshold_nats: float = 1.0  # H_th [D]: entropy the bucket tolerates per token
    bucket_nats: float = 1.0  # Theta_th [D]: accumulated excess entropy that ends drafting
    name: ClassVar[str] = "entropy_bucket"

    def __post_init__(self) -> None:
        _check_finite("threshold_nats", self.threshold_nats)
        _check_finite("bucket_nats", self.bucket_nats)
        if self.bucket_nats < 0:
            raise ValueError(f"bucket_nats must be >= 0, got {self.bucket_nats}")

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First i with Theta_i > Theta_th (a reflected random walk, so a short loop)."""
        theta = 0.0
        for i, h in enumerate(entropy.tolist(), start=1):
            theta = max(0.0, theta + h - self.threshold_nats)
            if theta > self.bucket_nats:
                return i
        return 0


@dataclass(frozen=True, slots=True)
class Survival:
    """Stop when the estimated probability that all drafted tokens are accepted falls below eps.

    alpha^(H) = min(1, a * exp(b * H)) maps entropy to per-token acceptance (docs/design.md §2;
    paper-reported a=1.0, b=-0.35 for Qwen2.5-0.5B -> 7B [S]); stop after token i when
    prod_{j<=i} alpha^(H_j) < epsilon.
    """

    a: float = 1.0
    b: float = -0.35
    epsilon: float = 0.3  # [D]
    name: ClassVar[str] = "survival"

    def __post_init__(self) -> None:
        _check_finite("a", self.a, positive=True)
        _check_finite("b", self.b)
        _check_finite("epsilon", self.epsilon)
        if not 0.0 < self.epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon}")

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First i with prod_{j<=i} alpha^(H_j) < epsilon."""
        alpha = np.minimum(1.0, self.a * np.exp(self.b * entropy))
        return _first_true(np.cumprod(alpha) < self.epsilon)


@dataclass(frozen=True, slots=True)
class ConfidenceStop:
    """Stop after the first token whose draft max-probability is below ``min_prob``.

    The confidence-stop baseline (transformers' ``assistant_confidence_threshold`` uses 0.4).
    """

    min_prob: float = 0.4
    name: ClassVar[str] = "confidence"

    def __post_init__(self) -> None:
        _check_finite("min_prob", self.min_prob)
        if not 0.0 <= self.min_prob <= 1.0:
            raise ValueError(f"min_prob must be in [0, 1], got {self.min_prob}")

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First i with max_v q_i(v) < min_prob."""
        return _first_true(max_prob < self.min_prob)


@dataclass(frozen=True, slots=True)
class AdaEDL:
    """AdaEDL-style entropy stop (Agrawal et al., 2024, arXiv 2410.18351), static threshold.

    The acceptance lower bound beta_i = 1 - sqrt(scale * H_i); stop after token i when
    beta_i < threshold. AdaEDL adapts the threshold online; here it is fixed [D].
    """

    scale: float = 0.3  # [D]
    threshold: float = 0.4  # [D]
    name: ClassVar[str] = "adaedl"

    def __post_init__(self) -> None:
        _check_finite("scale", self.scale, positive=True)
        _check_finite("threshold", self.threshold)

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First i with 1 - sqrt(scale * H_i) < threshold."""
        beta = 1.0 - np.sqrt(self.scale * np.maximum(entropy, 0.0))
        return _first_true(beta < self.threshold)


#: the built-in rules; :func:`realized_lengths` runs these exact types as array operations (a
#: subclass may change the rule, so it runs per round)
VECTORIZED_RULES: tuple[type[Any], ...] = (
    NoExit,
    EntropyThreshold,
    EntropyBucket,
    Survival,
    ConfidenceStop,
    AdaEDL,
)
EXIT_RULES: dict[str, type[Any]] = {cls.name: cls for cls in VECTORIZED_RULES}


def _first_within(mask: BoolArray, cap: IntArray) -> IntArray:
    """Per row, the 1-based index of the first True in ``mask[:, :cap]``, else ``cap``."""
    inside = mask & (np.arange(mask.shape[1]) < cap[:, None])  # (N, G)
    hit = inside.any(axis=1)
    return np.where(hit, inside.argmax(axis=1) + 1, cap)


def realized_lengths(
    rule: ExitRule,
    entropy: FloatArray,
    max_prob: FloatArray,
    cap: IntArray,
    threshold_nats: FloatArray | None = None,
) -> IntArray:
    """Realized draft lengths of N rounds (``realized_length`` of each row).

    The built-in rules run as array operations (a cumulative product for ``survival``, a loop
    over the G columns -- not over rounds -- for the entropy bucket's reflected walk); any other
    ``ExitRule`` falls back to one ``realized_length`` call per round.

    Args:
        rule: the exit rule.
        entropy: shape ``(N, G)``, entropies H of each round's draft continuation, nats.
        max_prob: shape ``(N, G)``, max-probabilities of the same tokens.
        cap: shape ``(N,)``, each round's budget after the end-of-generation cap (0..G).
        threshold_nats: shape ``(N,)``, per-round ``threshold_nats`` replacing the rule's
            (``budget_threshold`` action mode); None keeps the rule's.

    Returns:
        Shape ``(N,)``, int64, 0 <= gamma <= cap.

    >>> realized_lengths(EntropyThreshold(1.0), np.array([[0.2, 1.5, 0.1]]), np.ones((1, 3)),
    ...                  np.array([3]))
    array([2])
    """
    if isinstance(rule, NoExit):
        return cap.copy()
    if isinstance(rule, EntropyThreshold):
        th = rule.threshold_nats if threshold_nats is None else threshold_nats[:, None]
        return _first_within(entropy > th, cap)
    if isinstance(rule, EntropyBucket):
        th_col = rule.threshold_nats if threshold_nats is None else threshold_nats
        theta = np.zeros(entropy.shape[0])
        stop = np.zeros(entropy.shape, dtype=np.bool_)  # (N, G)
        for j in range(entropy.shape[1]):  # Theta_j = max(0, Theta_{j-1} + H_j - H_th)
            theta = np.maximum(0.0, theta + entropy[:, j] - th_col)
            stop[:, j] = theta > rule.bucket_nats
        return _first_within(stop, cap)
    if threshold_nats is not None:
        raise ValueError(f"per-round threshold_nats needs a threshold rule, got {rule.name!r}")
    if isinstance(rule, Survival):
        alpha = np.minimum(1.0, rule.a * np.exp(rule.b * entropy))
        return _first_within(np.cumprod(alpha, axis=1) < rule.epsilon, cap)
    if isinstance(rule, ConfidenceStop):
        return _first_within(max_prob < rule.min_prob, cap)
    if isinstance(rule, AdaEDL):
        beta = 1.0 - np.sqrt(rule.scale * np.maximum(entropy, 0.0))
        return _first_within(beta < rule.threshold, cap)
    return np.array(
        [
            realized_length(rule, h, p, int(c))
            for h, p, c in zip(entropy, max_prob, cap.tolist(), strict=True)
        ],
        dtype=np.int64,
    )


def make_exit_rule(name: str, **params: float) -> ExitRule:
    """Build an exit rule by name, e.g. ``make_exit_rule("entropy_bucket", threshold_nats=1.2)``.

    Raises:
        ValueError: unknown rule name, or a parameter the rule does not take.
    """
    if name not in EXIT_RULES:
        raise ValueError(f"exit_rule must be one of {sorted(EXIT_RULES)}, got {name!r}")
    cls = EXIT_RULES[name]
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"exit rule {name!r} takes {sorted(allowed)}, got unknown {unknown}")
    rule: ExitRule = cls(**params)
    return rule
