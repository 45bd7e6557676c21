from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from gelato_env.sd.exit_rules import (
    EXIT_RULES,
    AdaEDL,
    ConfidenceStop,
    EntropyBucket,
    EntropyThreshold,
    ExitRule,
    NoExit,
    Survival,
    is_batched,
    make_exit_rule,
    realized_length,
    realized_lengths,
    with_threshold,
)

EMPTY = np.zeros(0)


@pytest.mark.parametrize("name", sorted(EXIT_RULES))
def test_empty_arrays_never_stop(name: str) -> None:
    assert make_exit_rule(name).stop_after(EMPTY, EMPTY) == 0


@pytest.mark.parametrize("name", sorted(EXIT_RULES))
def test_rules_are_causal(name: str) -> None:
    """The stop index on a prefix equals the stop index on the full round when it lies inside."""
    rng = np.random.default_rng(0)
    rule = make_exit_rule(name)
    for _ in range(50):
        h, mp = rng.uniform(0, 4, 8), rng.uniform(0, 1, 8)
        stop = rule.stop_after(h, mp)
        for n in range(1, 9):
            prefix = rule.stop_after(h[:n], mp[:n])
            assert prefix == (stop if 0 < stop <= n else 0)


def test_no_exit() -> None:
    assert NoExit().stop_after(np.full(5, 100.0), np.zeros(5)) == 0


def test_entropy_threshold_is_strict() -> None:
    rule = EntropyThreshold(1.0)
    assert rule.stop_after(np.array([1.0, 1.0]), np.ones(2)) == 0  # equality does not stop
    assert rule.stop_after(np.array([1.0, 1.0 + 1e-12]), np.ones(2)) == 2


def test_entropy_bucket_accumulates_reflects_and_is_strict() -> None:
    rule = EntropyBucket(threshold_nats=1.0, bucket_nats=1.0)
    # Theta: 0.5, 1.0 (equal: no stop), 1.5 > 1 -> stop at 3
    assert rule.stop_after(np.array([1.5, 1.5, 1.5]), np.ones(3)) == 3
    # reflection at 0: a low-entropy token empties the bucket (Theta = max(0, ...))
    assert rule.stop_after(np.array([1.9, 0.0, 1.9, 1.9]), np.ones(4)) == 4
    assert rule.stop_after(np.array([1.9, 0.0, 1.9]), np.ones(3)) == 0
    # a single large token exits at once
    assert rule.stop_after(np.array([2.5]), np.ones(1)) == 1


def test_entropy_bucket_resets_per_round() -> None:
    rule = EntropyBucket(threshold_nats=1.0, bucket_nats=1.0)
    round_1 = np.array([1.9])  # Theta = 0.9 at the end of the round
    assert rule.stop_after(round_1, np.ones(1)) == 0
    assert rule.stop_after(np.array([1.5]), np.ones(1)) == 0  # a fresh round starts at Theta 0


def test_survival_product() -> None:
    rule = Survival(a=1.0, b=-0.35, epsilon=0.3)
    h = np.array([1.0, 1.0, 1.0, 1.0])
    alpha = math.exp(-0.35)
    expected = next(i for i in range(1, 5) if alpha**i < 0.3)
    assert rule.stop_after(h, np.ones(4)) == expected == 4
    assert Survival(a=5.0, b=0.0, epsilon=0.5).stop_after(h, np.ones(4)) == 0  # alpha capped at 1
    exact = Survival(a=0.5, b=0.0, epsilon=0.25)
    assert exact.stop_after(np.zeros(3), np.ones(3)) == 3  # 0.25 is not < 0.25; 0.125 is


def test_confidence_and_adaedl_thresholds() -> None:
    conf = ConfidenceStop(0.4)
    assert conf.stop_after(np.zeros(2), np.array([0.4, 0.39])) == 2
    ada = AdaEDL(scale=0.25, threshold=0.5)  # beta = 1 - sqrt(H / 4) < 0.5  <=>  H > 1
    assert ada.stop_after(np.array([1.0, 1.01]), np.ones(2)) == 2


def test_realized_length() -> None:
    rule = EntropyThreshold(1.0)
    h = np.array([0.1, 0.2, 3.0, 0.1])
    assert realized_length(rule, h, np.ones(4), 4) == 3
    assert realized_length(rule, h, np.ones(4), 2) == 2
    assert realized_length(rule, h, np.ones(4), 0) == 0


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("nope", {}, "exit_rule must be one of"),
        (
            "entropy_threshold",
            {"bogus": 1.0},
            r"takes \['threshold_nats'\], got unknown \['bogus'\]",
        ),
        ("entropy_threshold", {"threshold_nats": math.nan}, "threshold_nats must be a finite"),
        ("entropy_bucket", {"bucket_nats": -1.0}, "bucket_nats must be >= 0, got -1.0"),
        ("survival", {"epsilon": 1.0}, r"epsilon must be in \(0, 1\), got 1.0"),
        ("survival", {"a": 0.0}, "a must be > 0, got 0.0"),
        ("confidence", {"min_prob": 1.5}, r"min_prob must be in \[0, 1\], got 1.5"),
        ("adaedl", {"scale": -1.0}, "scale must be > 0, got -1.0"),
    ],
)
def test_make_exit_rule_errors(name: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_exit_rule(name, **params)


def test_make_exit_rule_builds_each_rule() -> None:
    assert sorted(EXIT_RULES) == [
        "adaedl", "confidence", "entropy_bucket", "entropy_threshold", "none", "survival",
    ]  # fmt: skip
    assert make_exit_rule("entropy_bucket", threshold_nats=1.2) == EntropyBucket(1.2, 1.0)
    assert make_exit_rule("survival", epsilon=0.5) == Survival(1.0, -0.35, 0.5)
    assert all(is_batched(make_exit_rule(name)) for name in EXIT_RULES)


def test_a_rule_overriding_stop_after_runs_per_round() -> None:
    """A subclass that changes the scalar rule is not batched: realized_lengths runs its rule."""

    @dataclass(frozen=True)
    class FirstTokenOnly(EntropyThreshold):
        def stop_after(self, entropy: np.ndarray, max_prob: np.ndarray) -> int:
            return 1 if entropy.shape[0] else 0

    rule = FirstTokenOnly(100.0)  # the inherited batch form would never stop
    assert not is_batched(rule)
    got = realized_lengths(rule, np.zeros((3, 4)), np.ones((3, 4)), np.array([4, 2, 0]))
    np.testing.assert_array_equal(got, [1, 1, 0])
    assert rule.stop_mask(np.zeros((1, 4)), np.ones((1, 4))).sum() == 0


def test_with_threshold_replaces_the_level_of_threshold_rules_only() -> None:
    assert with_threshold(EntropyBucket(1.0, 0.5), 2.0) == EntropyBucket(2.0, 0.5)
    with pytest.raises(ValueError, match="threshold rule"):
        with_threshold(ConfidenceStop(), 2.0)


@pytest.mark.parametrize(
    "rule",
    [
        NoExit(),
        EntropyThreshold(1.0),
        EntropyBucket(0.8, 0.5),
        Survival(1.0, -0.4, 0.4),
        ConfidenceStop(0.5),
        AdaEDL(0.3, 0.5),
    ],
    ids=lambda r: r.name,
)
def test_realized_lengths_equals_scalar_rule(rule: ExitRule) -> None:
    gen = np.random.default_rng(0)
    entropy = gen.gamma(2.0, 0.6, size=(400, 8))
    max_prob = gen.uniform(size=(400, 8))
    cap = gen.integers(0, 9, size=400)
    got = realized_lengths(rule, entropy, max_prob, cap)
    want = [
        realized_length(rule, h, p, int(c)) for h, p, c in zip(entropy, max_prob, cap, strict=True)
    ]
    np.testing.assert_array_equal(got, want)
    assert len(set(got.tolist())) > 2  # the rule stops rounds at various lengths


def test_realized_lengths_per_round_thresholds() -> None:
    entropy = np.array([[0.5, 2.0, 0.1], [0.5, 2.0, 0.1]])
    cap = np.array([3, 3])
    got = realized_lengths(EntropyThreshold(9.0), entropy, entropy, cap, np.array([0.4, 1.0]))
    np.testing.assert_array_equal(got, [1, 2])
    with pytest.raises(ValueError, match="threshold rule"):
        realized_lengths(Survival(), entropy, entropy, cap, np.array([0.4, 1.0]))
