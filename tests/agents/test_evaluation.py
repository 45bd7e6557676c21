"""Harness, budget behaviour and bounds on the micro trace (synthetic statistics from
random-initialised micro models: they exercise the machinery, not the paper's numbers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.bounds import Episode, clairvoyant_bound, evaluate_schedule
from agents.evaluation import (
    AgentRun,
    LosslessError,
    check_lossless,
    markdown_table,
    results_table,
    run_agent,
    write_results,
)
from agents.registry import make_agent
from gelato_env.env import GelatoEnv
from gelato_env.system import EnergyBudget

SYSTEM = "legacy_300m"  # 25 ms x 5 W drafting: the budgets below are sized for it


def _run(trace: Any, name: str, n: int = 6, budget: float = 0.3, **params: Any) -> AgentRun:
    def make_env(kwargs: Any) -> GelatoEnv:
        return GelatoEnv(trace_path=str(trace.path), budget_value=budget, system=SYSTEM, **kwargs)

    return run_agent(make_agent(name, **params), make_env, label=name, agent=name,
                     n_episodes=n, seed=3)  # fmt: skip


def _split(run: AgentRun, key: str) -> list[np.ndarray]:
    """Per-episode blocks of a round log (episode i's rounds sum to its output length)."""
    cum = np.cumsum(run.rounds["n_tokens"])
    ends = np.searchsorted(cum, np.cumsum([len(o) for o in run.outputs])) + 1
    return np.split(run.rounds[key], ends[:-1])


@pytest.fixture(scope="module")
def runs(micro_trace: Any) -> dict[str, AgentRun]:
    names = ["gelato", "lyapunov_only", "static", "dssd", "hf_heuristic", "confidence",
             "target_only", "device_only"]  # fmt: skip
    params: dict[str, dict[str, Any]] = {
        "gelato": {"fit_acceptance": True}, "lyapunov_only": {"fit_acceptance": True},
        "static": {"protocol": "topp"},
    }  # fmt: skip
    return {n: _run(micro_trace, n, **params.get(n, {})) for n in names}


def test_agents_share_prompts_and_channel_draws(runs: dict[str, AgentRun]) -> None:
    ref = runs["target_only"]
    ref_rates = _split(ref, "rate_bps")
    for name, run in runs.items():
        if name == "device_only":
            continue
        assert run.prompts == ref.prompts
        for rates, ref_r in zip(_split(run, "rate_bps"), ref_rates, strict=True):
            np.testing.assert_array_equal(rates, ref_r[: len(rates)])


def test_outputs_are_lossless(runs: dict[str, AgentRun], micro_trace: Any) -> None:
    reference = {i: micro_trace.output_of(i).tolist() for i in range(micro_trace.n_prompts)}
    check_lossless(list(runs.values()), reference)
    bad = {i: [t + 1 for t in out] for i, out in reference.items()}
    with pytest.raises(LosslessError, match="gelato"):
        check_lossless([runs["gelato"]], bad)


def test_results_table(runs: dict[str, AgentRun], tmp_path: Any) -> None:
    rows = results_table(list(runs.values()))
    by = {r["agent"]: r for r in rows}
    assert by["static"]["gain_throughput"] == pytest.approx(
        by["static"]["throughput_tps"]
        / max(by["static"]["throughput_tps"], by["dssd"]["throughput_tps"])
        - 1.0
    )
    assert by["target_only"]["mean_planned_budget"] == 0.0
    assert by["device_only"]["throughput_tps"] == pytest.approx(40.0)  # 1 / 25 ms
    # planned vs realized: the early exit only ever shortens drafting
    assert by["confidence"]["mean_drafted"] <= by["confidence"]["mean_planned_budget"]
    csv_path, md_path = write_results(rows, tmp_path)
    assert csv_path.read_text().startswith("agent,")
    assert "| gelato |" in md_path.read_text()
    assert markdown_table(rows).count("\n") == len(rows) + 1


def test_realization_model_reproduces_env_totals(
    runs: dict[str, AgentRun], micro_trace: Any
) -> None:
    env = GelatoEnv(
        trace_path=str(micro_trace.path), budget_value=0.3, payload="topp", system=SYSTEM
    )
    ref_rates = _split(runs["target_only"], "rate_bps")
    episodes = []
    for prompt, rates in zip(runs["target_only"].prompts, ref_rates, strict=True):
        lo = int(micro_trace.prompt_offsets[prompt])
        n = int(micro_trace.prompt_offsets[prompt + 1]) - lo
        episodes.append(Episode(micro_trace.accept_prob[lo:lo + n] > 0.5,
                                np.asarray(micro_trace.topp_size[lo:lo + n], dtype=np.int64),
                                rates, micro_trace.header.max_new_tokens))  # fmt: skip
    budget = EnergyBudget("per_round", 0.3)
    bound = clairvoyant_bound(episodes, env.params, budget)
    for name in ("gelato", "lyapunov_only", "static", "hf_heuristic", "confidence", "target_only"):
        run = runs[name]
        gammas = [g.astype(int).tolist() for g in _split(run, "n_drafted")]
        totals = evaluate_schedule(episodes, gammas, env.params, budget)
        assert totals.n_tokens == run.rounds["n_tokens"].sum()
        assert totals.latency_s == pytest.approx(run.rounds["latency_s"].sum(), rel=1e-9)
        assert totals.energy_j == pytest.approx(run.rounds["energy_j"].sum(), rel=1e-9)
        # no policy beats the clairvoyant optimum under the budget it actually met
        used = max(0.3, totals.energy_j / totals.n_rounds)
        relaxed = clairvoyant_bound(episodes, env.params, EnergyBudget("per_round", used))
        assert totals.throughput_tps <= relaxed.upper_tps * (1 + 1e-9)
        if totals.net_energy_j <= 0:
            assert totals.throughput_tps <= bound.upper_tps * (1 + 1e-9)


@pytest.mark.parametrize(
    ("name", "budget", "v"), [("lyapunov_only", 0.3, 0.1), ("gelato", 0.12, 0.02)]
)
def test_gelato_meets_the_energy_budget_long_run(
    micro_trace: Any, name: str, budget: float, v: float
) -> None:
    # time-average energy <= budget + Q_K / K: the overshoot vanishes as O(V / K)
    run = _run(micro_trace, name, n=60, budget=budget, v=v, fit_acceptance=True)
    metrics = run.metrics()
    assert metrics["energy_avg"] <= budget * 1.01
    greedy = _run(micro_trace, "static", n=60, budget=budget, gamma=4, protocol="topp")
    assert greedy.metrics()["energy_avg"] > budget * 1.2  # the budget binds for greedy SD


def test_throughput_rises_with_v_and_backlog_grows(micro_trace: Any) -> None:
    results = [
        _run(micro_trace, "lyapunov_only", n=60, v=v, fit_acceptance=True).metrics()
        for v in (0.1, 1.0, 10.0)
    ]
    tput = [m["throughput_tps"] for m in results]
    backlog = [m["backlog_mean_j"] for m in results]
    assert tput == sorted(tput)
    assert tput[0] < tput[-1]
    assert backlog == sorted(backlog)
    assert backlog[0] < backlog[-1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"budget": 0.0}, "budget_value must be"), ({"budget": -1.0}, "budget_value must be"),
     ({"n": 0}, "n_episodes must be >= 1")],
)  # fmt: skip
def test_bad_harness_input(micro_trace: Any, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _run(micro_trace, "static", **kwargs)


def test_evaluation_plays_distinct_heldout_prompts(micro_trace: Any) -> None:
    from agents.evaluation import heldout_prompts
    from agents.training import PromptSubset
    from gelato_env.traces.replay import ReplayBackend

    def full(kwargs: Any) -> GelatoEnv:
        return GelatoEnv(trace_path=str(micro_trace.path), **kwargs)

    run = run_agent(make_agent("static"), full, label="s", agent="static", n_episodes=6, seed=4)
    assert sorted(run.prompts) == list(range(6))  # every prompt once, seeds 4..9
    held = heldout_prompts(micro_trace)
    assert 0 < len(held) < micro_trace.n_prompts

    def heldout(kwargs: Any) -> GelatoEnv:
        backend = PromptSubset(ReplayBackend(micro_trace), held)
        return GelatoEnv(backend=backend, **kwargs)

    run = run_agent(make_agent("static"), heldout, label="s", agent="static",
                    n_episodes=len(held), seed=0)  # fmt: skip
    assert sorted(run.prompts) == list(range(len(held)))
    with pytest.warns(UserWarning, match="prompts repeat"):
        run_agent(make_agent("static"), heldout, label="s", agent="static",
                  n_episodes=len(held) + 1, seed=0)  # fmt: skip
