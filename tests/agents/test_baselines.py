"""Budget-aware baselines on SYNTHETIC traces (tests/agents/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.baselines import BudgetStatic, EntropyOnly, budget_static_table
from agents.evaluation import heldout_prompts, run_agent
from agents.registry import load_preset, make_agent
from gelato_env.backends import PromptSubset
from gelato_env.env import GelatoEnv
from gelato_env.traces.replay import ReplayBackend


def _heldout_run(trace: Any, policy: Any, **env: Any) -> Any:
    held = heldout_prompts(trace)

    def make_env(kwargs: Any) -> GelatoEnv:
        backend = PromptSubset(ReplayBackend(trace), held)
        return GelatoEnv(backend=backend, **{**env, **kwargs})

    return run_agent(policy, make_env, label="b", agent=policy.name, n_episodes=len(held), seed=0)


@pytest.mark.parametrize(("mode", "value"), [("per_round", 0.45), ("per_token", 0.2)])
def test_budget_static_meets_the_budget(alpha_trace_factory: Any, mode: str, value: float) -> None:
    trace = alpha_trace_factory(n_prompts=100, length=100, seed=2)
    policy = BudgetStatic(n_train_episodes=20)
    run = _heldout_run(trace, policy, budget_mode=mode, budget_value=value)
    metrics = run.metrics()
    assert metrics["budget_ratio"] <= 1.01, metrics  # held-out prompts: within 1 %
    assert metrics["budget_ratio"] > 0.5  # and it does use the budget
    chosen = policy.choice
    assert chosen is not None
    # the best feasible candidate: every faster one broke the budget on the training prompts
    faster = [c for c in policy.candidates if c.throughput_tps > chosen.throughput_tps]
    assert faster
    assert all(c.budget_ratio > 1.0 for c in faster)
    # an unconstrained static baseline does not meet it
    greedy = _heldout_run(trace, make_agent("static", gamma=4, protocol="topp"),
                          budget_mode=mode, budget_value=value)  # fmt: skip
    assert greedy.metrics()["budget_ratio"] > 1.1
    rows = budget_static_table(policy)
    assert sum(r["chosen"] for r in rows) == 1


def test_budget_static_warns_when_nothing_fits(alpha_trace_factory: Any) -> None:
    trace = alpha_trace_factory(n_prompts=20, length=40, seed=3)
    with pytest.warns(UserWarning, match="no fixed gamma and payload meets the budget"):
        _heldout_run(trace, BudgetStatic(n_train_episodes=2, protocols=("dssd",)),
                     budget_value=0.01)  # fmt: skip


def test_presets_build_budget_aware_variants() -> None:
    expected = {"static_budget": ("topp", "full", "dssd"), "dssd_budget": ("dssd",),
                "entropy_budget": ("topp",)}  # fmt: skip
    for preset, protocols in expected.items():
        spec = load_preset(preset)
        agent = make_agent(spec.name, **spec.params)
        assert agent.protocols == protocols
    with pytest.raises(ValueError, match="margin must be in"):
        BudgetStatic(margin=1.0)
    with pytest.raises(ValueError, match="protocol must be one of"):
        BudgetStatic(protocols=("zip",))


def test_entropy_only_calibrates_its_thresholds(alpha_trace_factory: Any) -> None:
    trace = alpha_trace_factory(n_prompts=40, length=60, seed=4)
    policy = EntropyOnly(gamma=4)
    _heldout_run(trace, policy)
    assert policy.exit_params != {}
    assert policy.exit_params != {"threshold_nats": 1.0, "bucket_nats": 1.0}
    fixed = EntropyOnly(gamma=4, threshold_nats=1.0, bucket_nats=1.0)
    _heldout_run(trace, fixed)
    assert fixed.exit_params == {"threshold_nats": 1.0, "bucket_nats": 1.0}
