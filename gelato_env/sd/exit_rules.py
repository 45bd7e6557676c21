"""Per-token early-exit rules for drafting (docs/design.md §2, step 2).

A rule looks at the statistics of the draft tokens drafted so far in the current round -- the
generative entropy H_i (nats) and the max-probability of each q_i -- and decides whether drafting
stops *after* token i (token i is sent for verification; token i+1 is not drafted). Rules are
causal: the decision after token i depends only on tokens 1..i, so the live engine (which drafts
one token at a time) and trace replay (which sees all recorded tokens at once) agree exactly.

All rules are frozen dataclasses; their state (the entropy bucket Theta, the survival product)
is recomputed from the round's statistics, so nothing leaks between rounds. This module imports
no torch.

Each built-in rule writes its math once, as :meth:`BatchRule.stop_mask` over a batch of rounds
(one row per round, one column per drafted token); the scalar :meth:`~ExitRule.stop_after` the
live engine calls after every token is the first stop of a one-row batch. Replay builds its
per-position tables from ``stop_mask`` over a whole trace (:mod:`gelato_env.traces.rounds`).
"""

from __future__ import annotations

import dataclasses
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


class BatchRule:
    """Base of the built-in rules: the rule is :meth:`stop_mask`, ``stop_after`` derives from it.

    ``stop_mask`` must be causal (column j reads columns 0..j only), so the first stop within a
    cap c is min(first stop, c) and one mask over all recorded tokens serves every cap.
    A subclass that overrides ``stop_after`` instead is run round by round
    (:func:`is_batched`).
    """

    __slots__ = ()
    name: ClassVar[str]

    def stop_mask(self, entropy: FloatArray, max_prob: FloatArray) -> BoolArray:
        """Whether drafting stops after each token, shape ``(N, G)``.

        Args:
            entropy: shape ``(N, G)``, entropy of q_1..q_G of N rounds, nats.
            max_prob: shape ``(N, G)``, max-probability of the same tokens.
        """
        raise NotImplementedError

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First 1-based index i at which drafting stops after token i, or 0 if it never does."""
        if entropy.shape[0] == 0:
            return 0
        return _first_true(self.stop_mask(entropy[None, :], max_prob[None, :])[0])

    def stop_indices(self, entropy: FloatArray, max_prob: FloatArray) -> IntArray:
        """Per round, the first stop over all G tokens (1-based), G when none: shape ``(N,)``."""
        mask = self.stop_mask(entropy, max_prob)
        g = mask.shape[1]
        return np.where(mask.any(axis=1), mask.argmax(axis=1) + 1, g).astype(np.int64)


def is_batched(rule: ExitRule) -> bool:
    """Whether ``rule`` runs as its batch form: a :class:`BatchRule` keeping the derived scalar.

    >>> is_batched(EntropyBucket()), is_batched(Survival())
    (True, True)
    """
    return isinstance(rule, BatchRule) and type(rule).stop_after is BatchRule.stop_after


@dataclass(frozen=True, slots=True)
class NoExit(BatchRule):
    """Never stop early: draft the full budget."""

    name: ClassVar[str] = "none"

    def stop_mask(self, entropy: FloatArray, max_prob: FloatArray) -> BoolArray:
        """Never."""
        return np.zeros(entropy.shape, dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class EntropyThreshold(BatchRule):
    """Stop after the first token whose entropy exceeds ``threshold_nats`` (H_i > H_th)."""

    threshold_nats: float = 1.5  # [D] about the median draft entropy on the default pair
    name: ClassVar[str] = "entropy_threshold"

    def __post_init__(self) -> None:
        _check_finite("threshold_nats", self.threshold_nats)

    def stop_mask(self, entropy: FloatArray, max_prob: FloatArray) -> BoolArray:
        """H_i > H_th."""
        return entropy > self.threshold_nats


@dataclass(frozen=True, slots=True)
class EntropyBucket(BatchRule):
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

    def stop_mask(self, entropy: FloatArray, max_prob: FloatArray) -> BoolArray:
        """Theta_i > Theta_th (a reflected random walk: a loop over the G columns, not rounds)."""
        theta = np.zeros(entropy.shape[0])
        stop = np.zeros(entropy.shape, dtype=np.bool_)  # (N, G)
        for j in range(entropy.shape[1]):  # Theta_j = max(0, Theta_{j-1} + H_j - H_th)
            theta = np.maximum(0.0, theta + entropy[:, j] - self.threshold_nats)
            stop[:, j] = theta > self.bucket_nats
        return stop


@dataclass(frozen=True, slots=True)
class Survival(BatchRule):
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

    def stop_mask(self, entropy: FloatArray, max_prob: FloatArray) -> BoolArray:
        """prod_{j<=i} alpha^(H_j) < epsilon."""
        alpha = np.minimum(1.0, self.a * np.exp(self.b * entropy))
        return np.cumprod(alpha, axis=1) < self.epsilon


@dataclass(frozen=True, slots=True)
class ConfidenceStop(BatchRule):
    """Stop after the first token whose draft max-probability is below ``min_prob``.

    The confidence-stop baseline (transformers' ``assistant_confidence_threshold`` uses 0.4).
    """

    min_prob: float = 0.4
    name: ClassVar[str] = "confidence"

    def __post_init__(self) -> None:
        _check_finite("min_prob", self.min_prob)
        if not 0.0 <= self.min_prob <= 1.0:
            raise ValueError(f"min_prob must be in [0, 1], got {self.min_prob}")

    def stop_mask(self, entropy: FloatArray, max_prob: FloatArray) -> BoolArray:
        """max_v q_i(v) < min_prob."""
        return max_prob < self.min_prob


@dataclass(frozen=True, slots=True)
class AdaEDL(BatchRule):
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

    def stop_mask(self, entropy: FloatArray, max_prob: FloatArray) -> BoolArray:
        """1 - sqrt(scale * H_i) < threshold."""
        beta = 1.0 - np.sqrt(self.scale * np.maximum(entropy, 0.0))
        return beta < self.threshold


#: the built-in rules, by name
EXIT_RULES: dict[str, type[Any]] = {
    cls.name: cls
    for cls in (NoExit, EntropyThreshold, EntropyBucket, Survival, ConfidenceStop, AdaEDL)
}
#: rules with a ``threshold_nats`` parameter (the ``budget_threshold`` action mode sets it)
THRESHOLD_RULES: tuple[str, ...] = ("entropy_threshold", "entropy_bucket")


def with_threshold(rule: ExitRule, threshold_nats: float) -> ExitRule:
    """``rule`` with its ``threshold_nats`` replaced (``budget_threshold`` levels).

    Raises:
        ValueError: the rule has no ``threshold_nats`` parameter.
    """
    if rule.name not in THRESHOLD_RULES or not hasattr(rule, "threshold_nats"):
        raise ValueError(
            f"per-round threshold_nats needs a threshold rule {list(THRESHOLD_RULES)}, "
            f"got {rule.name!r}"
        )
    return dataclasses.replace(rule, threshold_nats=float(threshold_nats))  # type: ignore[type-var]


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

    A :class:`BatchRule` runs its ``stop_mask`` on the whole batch; any other ``ExitRule`` runs
    one ``realized_length`` call per round.

    Args:
        rule: the exit rule.
        entropy: shape ``(N, G)``, entropies H of each round's draft continuation, nats.
        max_prob: shape ``(N, G)``, max-probabilities of the same tokens.
        cap: shape ``(N,)``, each round's budget after the end-of-generation cap (0..G).
        threshold_nats: shape ``(N,)``, per-round ``threshold_nats`` replacing the rule's
            (``budget_threshold`` action mode); None keeps the rule's.

    Returns:
        Shape ``(N,)``, int64, 0 <= gamma <= cap.

    Raises:
        ValueError: ``threshold_nats`` for a rule without that parameter.

    >>> realized_lengths(EntropyThreshold(1.0), np.array([[0.2, 1.5, 0.1]]), np.ones((1, 3)),
    ...                  np.array([3]))
    array([2])
    """
    if threshold_nats is not None:
        out = np.empty(cap.shape[0], dtype=np.int64)
        for level in np.unique(threshold_nats).tolist():
            rows = threshold_nats == level
            out[rows] = realized_lengths(
                with_threshold(rule, level), entropy[rows], max_prob[rows], cap[rows]
            )
        return out
    if is_batched(rule):
        return _first_within(rule.stop_mask(entropy, max_prob), cap).astype(np.int64)  # type: ignore[attr-defined]
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
