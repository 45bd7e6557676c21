"""Replay vs the live engine under greedy verification: identical rounds (micro, synthetic)."""

from __future__ import annotations

import numpy as np
import pytest

from gelato_env.sd.engine import LiveBackend, SpeculativeDecoder
from gelato_env.sd.exit_rules import (
    ConfidenceStop,
    EntropyBucket,
    EntropyThreshold,
    ExitRule,
    NoExit,
    Survival,
)
from gelato_env.sd.models import ModelPair
from gelato_env.sd.round import RoundBackend, RoundResult
from gelato_env.traces import ReplayBackend, Trace
from gelato_env.traces.prompts import PromptTokens
from gelato_env.traces.recorder import RecordConfig, record_trace
from tests.conftest import micro_prompts


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """Live micro models run several times faster on one thread on a shared CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rules(trace: Trace) -> list[ExitRule]:
    """Exit rules with thresholds at quantiles of the trace's own (synthetic) statistics."""
    h = np.asarray(trace.entropy, dtype=np.float64)
    mp = np.asarray(trace.max_prob, dtype=np.float64)
    q = lambda x, p: float(np.quantile(x, p))  # noqa: E731
    return [
        NoExit(),
        EntropyThreshold(q(h, 0.8)),
        EntropyBucket(threshold_nats=q(h, 0.5), bucket_nats=q(h, 0.9) - q(h, 0.5)),
        ConfidenceStop(min_prob=q(mp, 0.2)),
        Survival(a=1.0, b=-0.02, epsilon=0.6),
    ]


def _compare(live: RoundResult, replay: RoundResult) -> None:
    assert replay.n_drafted == live.n_drafted
    assert replay.n_accepted == live.n_accepted
    np.testing.assert_array_equal(replay.tokens, live.tokens)
    np.testing.assert_allclose(replay.entropy, live.entropy, rtol=1e-5)
    np.testing.assert_allclose(replay.max_prob, live.max_prob, rtol=1e-5)
    np.testing.assert_array_equal(replay.accept_prob, live.accept_prob)
    np.testing.assert_array_equal(replay.topp_size, live.topp_size)
    assert replay.finished == live.finished


def _run_both(
    live: RoundBackend, replay: RoundBackend, rules: list[ExitRule], seed: int
) -> tuple[int, int]:
    """Drive both backends through every prompt with random budgets/rules; count rounds, exits."""
    gen = np.random.default_rng(seed)
    n_rounds = n_early = 0
    for index in range(replay.n_prompts):
        live.reset(index, np.random.default_rng(0))
        replay.reset(index, np.random.default_rng(0))
        while not live.done:
            budget = int(gen.integers(0, live.gamma_max + 1))
            rule = rules[int(gen.integers(len(rules)))]
            peek_live, peek_replay = live.peek(budget), replay.peek(budget)
            np.testing.assert_allclose(peek_replay.entropy, peek_live.entropy, rtol=1e-5)
            a, b = live.run_round(budget, rule), replay.run_round(budget, rule)
            _compare(a, b)
            n_rounds += 1
            n_early += a.n_drafted < len(peek_live.entropy)
        assert replay.done
        assert replay.n_generated == live.n_generated
    return n_rounds, n_early


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replay_equals_live_greedy(micro_pair, micro_trace, seed):
    draft, target = micro_pair
    h = micro_trace.header
    decoder = SpeculativeDecoder(
        draft,
        target,
        gamma_max=h.gamma_max,
        max_new_tokens=h.max_new_tokens,
        eos_token_id=h.eos_token_id,
    )
    prompts = [micro_trace.prompt_ids_of(i).tolist() for i in range(micro_trace.n_prompts)]
    live = LiveBackend(decoder, prompts)
    replay = ReplayBackend(micro_trace)
    n_rounds, n_early = _run_both(live, replay, _rules(micro_trace), seed)
    assert n_rounds > micro_trace.n_prompts  # several rounds per prompt
    assert n_early > 0  # the exit rules did stop drafting early in some rounds


def test_replay_equals_live_mixed_architectures_and_eos(micro_pair_mixed, tmp_path):
    """Llama draft + GPT-2 target; a short max_new_tokens replay of a longer recording."""
    draft, target = micro_pair_mixed
    pair = ModelPair(draft, target, None, "micro-llama", "micro-gpt2", eos_token_id=1)
    prompts = [PromptTokens(f"p{i}", tuple(p)) for i, p in enumerate(micro_prompts(3, seed=11))]
    trace, stats = record_trace(
        pair,
        prompts,
        tmp_path / "mixed",
        RecordConfig(gamma_max=5, max_new_tokens=24, batch_positions=7, num_threads=1),
        progress=False,
    )
    assert stats.n_inconsistent == 0
    decoder = SpeculativeDecoder(draft, target, gamma_max=4, max_new_tokens=17, eos_token_id=1)
    live = LiveBackend(decoder, [list(p.token_ids) for p in prompts])
    replay = ReplayBackend(trace, gamma_max=4, max_new_tokens=17)
    _run_both(live, replay, _rules(trace), seed=5)


def test_recorded_target_output_is_target_greedy(micro_pair, micro_trace):
    draft, target = micro_pair
    decoder = SpeculativeDecoder(draft, target, gamma_max=1, max_new_tokens=40, eos_token_id=1)
    for i in range(micro_trace.n_prompts):
        out = decoder.generate(micro_trace.prompt_ids_of(i).tolist(), budget=0)
        np.testing.assert_array_equal(micro_trace.output_of(i), out)


def test_eos_ends_replay(tmp_path, micro_pair):
    """A pair whose EOS is the target's frequent token: replay stops right after EOS like live."""
    draft, target = micro_pair
    first = SpeculativeDecoder(draft, target, gamma_max=1, max_new_tokens=30).generate(
        micro_prompts(1, seed=3)[0], budget=0
    )
    eos = int(np.bincount(first).argmax())  # a token the target emits: make it the EOS
    pair = ModelPair(draft, target, None, "d", "t", eos_token_id=eos)
    prompts = [PromptTokens(f"p{i}", tuple(p)) for i, p in enumerate(micro_prompts(4, seed=3))]
    trace, _ = record_trace(
        pair,
        prompts,
        tmp_path / "eos",
        RecordConfig(gamma_max=6, max_new_tokens=30, num_threads=1),
        progress=False,
    )
    assert (trace.lengths < 30).any()
    decoder = SpeculativeDecoder(draft, target, gamma_max=6, max_new_tokens=30, eos_token_id=eos)
    live = LiveBackend(decoder, [list(p.token_ids) for p in prompts])
    _run_both(live, ReplayBackend(trace), [NoExit()], seed=9)
