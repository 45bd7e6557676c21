"""ReplayBackend semantics on a recorded trace (no live models needed)."""

from __future__ import annotations

import numpy as np
import pytest

from gelato_env.sd.exit_rules import EntropyThreshold, NoExit
from gelato_env.sd.round import RoundBackend
from gelato_env.traces import ReplayBackend


def test_protocol_and_properties(micro_trace):
    backend = ReplayBackend(micro_trace)
    assert isinstance(backend, RoundBackend)
    assert (backend.gamma_max, backend.n_prompts, backend.max_new_tokens) == (8, 6, 40)
    assert backend.done


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
