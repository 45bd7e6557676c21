"""ReplayBackend semantics on a recorded trace (no live models needed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gelato_env.sd.exit_rules import (
    AdaEDL,
    ConfidenceStop,
    EntropyBucket,
    EntropyThreshold,
    NoExit,
    Survival,
    realized_length,
)
from gelato_env.sd.round import RoundBackend
from gelato_env.traces import ReplayBackend


def test_protocol_and_properties(micro_trace, rng):
    backend = ReplayBackend(micro_trace, max_new_tokens=30)
    assert backend.trace is micro_trace  # RoundBackend.trace: the whole trace, for calibration
    assert (backend.gamma_max, backend.n_prompts, backend.max_new_tokens) == (8, 6, 30)
    assert backend.done
    backend.reset(1, rng)
    assert (backend.done, backend.n_generated) == (False, 0)
    # every protocol member is served (a backend lacking one, e.g. trace, is refused)
    assert {m for m in dir(RoundBackend) if not m.startswith("_")} <= set(dir(backend))


def test_target_only_rounds_reproduce_the_output(micro_trace, rng):
    backend = ReplayBackend(micro_trace)
    backend.reset(2, rng)
    out = []
    while not backend.done:
        result = backend.run_round(0, NoExit())
        assert (result.n_drafted, result.n_accepted, result.n_tokens) == (0, 0, 1)
        out.extend(result.tokens.tolist())
    np.testing.assert_array_equal(out, micro_trace.output_of(2))
    assert backend.output_ids == out


def test_round_follows_recorded_bits(micro_trace, rng):
    backend = ReplayBackend(micro_trace)
    backend.reset(0, rng)
    row = int(micro_trace.prompt_offsets[0])
    bits = micro_trace.accept_prob[row]
    expected = int(np.argmin(bits)) if bits.min() == 0 else 8
    result = backend.run_round(8, NoExit())
    assert result.n_drafted == 8
    assert result.n_accepted == expected
    np.testing.assert_array_equal(
        result.tokens, micro_trace.target_tokens[row : row + expected + 1]
    )
    assert backend.n_generated == expected + 1


def test_exit_rule_and_peek(micro_trace, rng):
    backend = ReplayBackend(micro_trace)
    backend.reset(1, rng)
    row = int(micro_trace.prompt_offsets[1])
    h = micro_trace.entropy[row].astype(np.float64)
    threshold = float(np.sort(h)[3])  # stops after the first token above the 4th smallest
    stats = backend.peek(8)
    np.testing.assert_array_equal(stats.entropy, h)
    result = backend.run_round(8, EntropyThreshold(threshold))
    assert result.n_drafted == int(np.flatnonzero(h > threshold)[0]) + 1


def test_cap_at_remaining_and_shorter_generation(micro_trace, rng):
    backend = ReplayBackend(micro_trace, max_new_tokens=5)
    backend.reset(0, rng)
    total = 0
    while not backend.done:
        result = backend.run_round(8, NoExit())
        assert result.n_drafted <= 5 - total - 1
        total += result.n_tokens
    assert total == 5
    assert result.finished


@pytest.mark.parametrize("budget", [-1, 9, 2.5])
def test_bad_budget(micro_trace, rng, budget):
    backend = ReplayBackend(micro_trace)
    backend.reset(0, rng)
    with pytest.raises(ValueError, match="budget must be an int in"):
        backend.run_round(budget, NoExit())


def test_bad_prompt_index(micro_trace, rng):
    with pytest.raises(ValueError, match=r"prompt_index must be in \[0, 6\), got 6"):
        ReplayBackend(micro_trace).reset(6, rng)


def test_deterministic_sampled_replay(micro_pair, tmp_path):
    from gelato_env.sd.models import ModelPair
    from gelato_env.traces.prompts import PromptTokens
    from gelato_env.traces.recorder import RecordConfig, record_trace

    draft, target = micro_pair
    pair = ModelPair(draft, target, None, "d", "t", eos_token_id=None)
    cfg = RecordConfig(gamma_max=4, max_new_tokens=16, temperature=1.0, num_threads=1)
    trace, _ = record_trace(pair, [PromptTokens("a", (3, 4, 5))], tmp_path, cfg, progress=False)

    def rollout(seed: int) -> list[int]:
        backend = ReplayBackend(trace, temperature=1.0)
        backend.reset(0, np.random.default_rng(seed))
        counts = []
        while not backend.done:
            counts.append(backend.run_round(4, NoExit()).n_accepted)
        return counts

    assert rollout(1) == rollout(1)
    assert any(rollout(s) != rollout(1) for s in range(2, 8))


def _reference_lengths(trace, rule, max_new_tokens):
    """gamma of every (position, budget) by running the rule on the capped round, as the live
    engine does (the definition the tabulated stop indices must reproduce)."""
    out = {}
    for prompt in range(trace.n_prompts):
        row0 = int(trace.prompt_offsets[prompt])
        n_pos = min(int(trace.prompt_offsets[prompt + 1]) - row0, max_new_tokens)
        for t in range(n_pos):
            h = trace.entropy[row0 + t].astype(np.float64)
            p = trace.max_prob[row0 + t].astype(np.float64)
            for budget in range(trace.gamma_max + 1):
                cap = min(budget, max_new_tokens - t - 1)
                out[prompt, t, budget] = realized_length(rule, h[:cap], p[:cap], cap)
    return out


class _MostUncertainStop(EntropyThreshold):
    """A custom rule that looks ahead (stops after the round's most uncertain token), so it is
    not causal: a table over all gamma_max recorded tokens would get it wrong, and the replay
    must run it on each round's own tokens."""

    def stop_after(self, entropy, max_prob):
        return int(np.argmax(entropy)) + 1 if len(entropy) else 0


@pytest.fixture(scope="module")
def spread_trace(micro_trace):
    """The micro trace with SYNTHETIC, spread-out draft statistics (H ~ N(1.5, 0.8) nats,
    max-prob ~ N(0.5, 0.2)): the random micro models' entropies all sit within 0.01 nats of
    ln 64, too close for every rule to stop at some positions and not at others."""

    def standardized(x):
        x = np.asarray(x, dtype=np.float64)
        return (x - np.median(x)) / np.std(x)

    entropy = np.clip(1.5 + 0.8 * standardized(micro_trace.entropy), 0.0, None)
    max_prob = np.clip(0.5 + 0.2 * standardized(micro_trace.max_prob), 0.01, 1.0)
    return dataclasses.replace(
        micro_trace, entropy=entropy.astype(np.float32), max_prob=max_prob.astype(np.float32)
    )


RULES = {
    "none": NoExit(),
    "threshold": EntropyThreshold(1.5),
    "bucket": EntropyBucket(1.0, 1.0),
    "survival": Survival(1.0, -0.35, 0.3),
    "confidence": ConfidenceStop(0.5),
    "adaedl": AdaEDL(0.2, 0.4),
    "custom": _MostUncertainStop(1.5),
}


@pytest.mark.parametrize("name", list(RULES))
def test_tabulated_stops_equal_the_rule_at_every_position_and_budget(spread_trace, name):
    rule = RULES[name]
    micro_trace = spread_trace
    expected = _reference_lengths(micro_trace, rule, micro_trace.header.max_new_tokens)
    full = [g for (_, t, b), g in expected.items() if b == 8 and t < 30]
    if name != "none":  # the rule stops early at some positions, not at others
        assert len(set(full)) >= 3, sorted(set(full))
    backend = ReplayBackend(micro_trace)
    gen = np.random.default_rng(0)
    # every (position, budget): one round per budget from every position of every prompt, each
    # round from a fresh replay positioned by target-only rounds; twice, so the second pass
    # reads the filled table
    for _ in range(2):
        for (prompt, t, budget), gamma in expected.items():
            backend.reset(prompt, gen)
            for _ in range(t):
                backend.run_round(0, NoExit())
            assert backend.run_round(budget, rule).n_drafted == gamma, (prompt, t, budget)


def test_many_distinct_rules_stay_exact(micro_trace, rng):
    """More distinct rules than tables kept: the oldest tables are dropped, results unchanged."""
    backend = ReplayBackend(micro_trace)
    row = int(micro_trace.prompt_offsets[3])
    h = micro_trace.entropy[row].astype(np.float64)
    for threshold in np.linspace(h.min() - 0.1, h.max() + 0.1, 80):
        rule = EntropyThreshold(float(threshold))
        backend.reset(3, rng)
        assert backend.run_round(8, rule).n_drafted == realized_length(rule, h, h, 8)
