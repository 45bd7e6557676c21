"""Harness, budget behaviour and bounds on the micro trace (synthetic statistics from
random-initialised micro models: they exercise the machinery, not the paper's numbers)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from agents.base import AnalyticPolicy, Decision
from agents.bounds import Episode, clairvoyant_bound, evaluate_schedule
from agents.evaluation import (
    SEED_STRIDE,
    AgentRun,
    LosslessError,
    check_heldout,
    check_lossless,
    episode_seeds,
    run_agent,
    run_agent_seeds,
)
from agents.registry import make_agent
from agents.results import (
    CI,
    markdown_table,
    per_seed_rows,
    results_table,
    seed_table,
    t_interval,
    write_results,
)
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
    table = markdown_table(rows)
    assert table.startswith("One evaluation seed: no confidence intervals")
    assert table.count("\n") == len(rows) + 3  # caption, blank line, header, rule, rows
    assert " ± " not in table  # no interval from one seed


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


# -- seeds, confidence intervals --------------------------------------------------------------


def _make_env(trace: Any, budget: float = 0.3) -> Any:
    def make_env(kwargs: Any) -> GelatoEnv:
        return GelatoEnv(trace_path=str(trace.path), budget_value=budget, system=SYSTEM, **kwargs)

    return make_env


class _Drifting(AnalyticPolicy):
    """Drafts more as it ages, across episodes (state the harness must not carry across seeds)."""

    def __init__(self) -> None:
        super().__init__()
        self.n_rounds = 0

    def decide(self, obs: Any) -> Decision:
        self.n_rounds += 1
        return Decision(budget=min(self.n_rounds // 5, 8))


@pytest.mark.parametrize("name", ["gelato", "drifting"])
def test_each_seed_plays_as_a_freshly_bound_agent(micro_trace: Any, name: str) -> None:
    # bound once, copied per seed: the same rounds as binding a new agent for that seed
    def agent() -> AnalyticPolicy:
        return _Drifting() if name == "drifting" else make_agent(name, fit_acceptance=True)

    runs = run_agent_seeds(agent(), _make_env(micro_trace), label="g", agent=name,
                           n_episodes=4, seeds=[0, 1, 2])  # fmt: skip
    assert [run.seed for run in runs] == [0, 1, 2]
    for run in runs:
        alone = run_agent(agent(), _make_env(micro_trace), label="g", agent=name, n_episodes=4,
                          seed=run.seed)  # fmt: skip
        assert alone.prompts == run.prompts
        for key, values in alone.rounds.items():
            np.testing.assert_array_equal(values, run.rounds[key], err_msg=key)


def test_seeds_vary_prompt_order_and_channel(micro_trace: Any) -> None:
    runs = run_agent_seeds(make_agent("target_only"), _make_env(micro_trace), label="t",
                           agent="target_only", n_episodes=6, seeds=[0, 1, 2])  # fmt: skip
    orders = [run.prompts for run in runs]
    assert all(sorted(order) == list(range(6)) for order in orders)  # every prompt once per seed
    assert len(set(orders)) == 3  # each seed starts the order elsewhere
    first = [run.rounds["rate_bps"][run.rounds["episode"] == 0] for run in runs]
    assert not np.array_equal(first[0][:5], first[1][:5])  # other channel draws
    assert list(episode_seeds(1, 3)) == [SEED_STRIDE, SEED_STRIDE + 1, SEED_STRIDE + 2]


def test_same_seeds_give_identical_tables(micro_trace: Any) -> None:
    def table() -> list[dict[str, Any]]:
        per_agent = [
            run_agent_seeds(make_agent(name), _make_env(micro_trace), label=name, agent=name,
                            n_episodes=3, seeds=[4, 7])
            for name in ("gelato", "dssd", "static")
        ]  # fmt: skip
        return seed_table([list(group) for group in zip(*per_agent, strict=True)])

    first, second = table(), table()
    assert first == second
    assert first[0]["n_seeds"] == 2
    assert np.isfinite(first[0]["throughput_tps" + CI])


@pytest.mark.parametrize(
    ("seeds", "n", "match"),
    [([], 2, "seeds must not be empty"), ([1, 1], 2, "seeds must be distinct"),
     ([-1], 2, "seed must be >= 0"), ([0], SEED_STRIDE + 1, "n_episodes must be in")],
)  # fmt: skip
def test_bad_seeds(micro_trace: Any, seeds: list[int], n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_agent_seeds(make_agent("static"), _make_env(micro_trace), label="s", agent="static",
                        n_episodes=n, seeds=seeds)  # fmt: skip


def _fake_run(label: str, agent: str, seed: int, tokens: float, energy_j: float) -> AgentRun:
    """A one-round run: ``tokens`` tokens in 1 s spending ``energy_j`` (budget 1 J/round)."""
    rounds = {key: np.zeros(1) for key in ("budget", "n_drafted", "n_accepted", "queue")}
    rounds.update(n_tokens=np.array([tokens]), latency_s=np.array([1.0]),
                  energy_j=np.array([energy_j]))  # fmt: skip
    return AgentRun(label, agent, rounds, ((1,),), (0,), "per_round", 1.0, seed=seed)


def test_seed_table_means_intervals_and_per_seed_gains() -> None:
    tput = {"gelato": [10.0, 12.0, 14.0], "dssd": [5.0, 8.0, 7.0]}
    groups = [
        [_fake_run(name, name, s, tput[name][s], 0.5) for name in ("gelato", "dssd")]
        for s in range(3)
    ]
    gelato, dssd = seed_table(groups)
    # Student t with 2 dof: t_{0.975, 2} = 4.3027; s = 2 -> half-width 4.3027 * 2 / sqrt(3)
    assert gelato["throughput_tps"] == pytest.approx(12.0)
    assert gelato["throughput_tps" + CI] == pytest.approx(4.302653 * 2.0 / np.sqrt(3.0))
    # the gain is taken per seed (same prompts and channel), then averaged
    per_seed = [10 / 5 - 1, 12 / 8 - 1, 14 / 7 - 1]
    assert gelato["gain_tput_vs_dssd"] == pytest.approx(np.mean(per_seed))
    assert gelato["gain_tput_vs_dssd" + CI] == pytest.approx(t_interval(per_seed)[1])
    assert gelato["gain_tput_vs_dssd"] != pytest.approx(12.0 / np.mean(tput["dssd"]) - 1)
    assert dssd["gain_tput_vs_dssd"] == 0.0
    assert gelato["best_baseline"] == "dssd"  # meets the budget (0.5 of it)
    rows = per_seed_rows(groups)
    assert [(r["seed"], r["agent"]) for r in rows[:3]] == [(0, "gelato"), (0, "dssd"),
                                                            (1, "gelato")]  # fmt: skip
    table = markdown_table([gelato, dssd])
    assert "over 3 evaluation seeds (Student t, 2 dof)" in table
    assert "| gelato | 12.00 ± 4.97 |" in table


def test_strongest_baseline_is_never_a_gelato_variant() -> None:
    """GELATO's ablation and first build meet the budget and are faster, yet dssd is the best."""
    tput = {"gelato": 10.0, "lyapunov_only": 11.0, "gelato_ema": 12.0, "dssd": 6.0}
    groups = [[_fake_run(name, name, 0, t, 0.5) for name, t in tput.items()]]
    rows = {row["agent"]: row for row in seed_table(groups)}
    assert all(row["meets_budget"] for row in rows.values())
    assert rows["gelato"]["best_baseline"] == "dssd"
    assert rows["gelato"]["gain_tput_vs_best"] == pytest.approx(10.0 / 6.0 - 1)


def test_seed_table_refuses_mismatched_seeds() -> None:
    a = [_fake_run("gelato", "gelato", 0, 1.0, 0.5)]
    b = [_fake_run("dssd", "dssd", 1, 1.0, 0.5)]
    with pytest.raises(ValueError, match="same agents in the same order"):
        seed_table([a, b])


def test_t_interval_needs_two_values() -> None:
    mean, half = t_interval([3.0])
    assert mean == 3.0
    assert np.isnan(half)
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 0.0)


class _Card:
    split: ClassVar[dict[str, list[int]]] = {"train": [0, 1, 2], "eval": [3, 4, 5]}


class _TrainedStatic:
    """A stand-in for a learned agent: static SD with a training card (prompts 0-2)."""

    card = _Card()


def test_learned_agents_play_heldout_prompts_only(micro_trace: Any) -> None:
    from agents.baselines import StaticSD
    from agents.training import PromptSubset
    from gelato_env.traces.replay import ReplayBackend

    class Trained(_TrainedStatic, StaticSD):
        pass

    def subset(indices: list[int]) -> Any:
        def make_env(kwargs: Any) -> GelatoEnv:
            backend = PromptSubset(ReplayBackend(micro_trace), indices)
            return GelatoEnv(backend=backend, system=SYSTEM, **kwargs)

        return make_env

    run = run_agent(Trained(), subset([3, 4, 5]), label="l", agent="learned", n_episodes=3,
                    seed=0)  # fmt: skip
    assert sorted(run.prompts) == [0, 1, 2]  # env prompts 0-2: trace prompts 3-5
    with pytest.raises(ValueError, match=r"plays 1 of the learned agent's 3 training prompts"):
        run_agent(Trained(), subset([2, 3]), label="l", agent="learned", n_episodes=2, seed=0)
    with pytest.raises(ValueError, match=r"trace prompt indices \[0, 1, 2\]"):
        run_agent(Trained(), _make_env(micro_trace), label="l", agent="learned", n_episodes=2,
                  seed=0)  # fmt: skip
    with pytest.warns(UserWarning, match="cannot check"):
        check_heldout(_TrainedStatic(), "l", None)  # type: ignore[arg-type]
    check_heldout(make_agent("static"), "s", [0, 1])  # no card: nothing to check
