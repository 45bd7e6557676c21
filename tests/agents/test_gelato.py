from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from agents.calibration import training_prompts
from agents.evaluation import acceptance_calibration, heldout_prompts, run_agent, stopped_drafting
from agents.forecast import RoundCostModel, expected_tokens
from agents.gelato import AcceptanceEstimator, GelatoPolicy, MarginalUtility
from agents.registry import make_agent
from gelato_env.backends import PromptSubset
from gelato_env.env import GelatoEnv
from gelato_env.observation import ObservationFields, ObservationSpec
from gelato_env.sd.exit_rules import realized_length
from gelato_env.system import EnergyBudget, system_setting
from gelato_env.traces.fit import calibrate_entropy_bucket
from gelato_env.traces.replay import ReplayBackend


def _obs(queue_j: float = 0.0, rate_bps: float = 6e6, entropy: float = 1.0) -> ObservationFields:
    return ObservationFields(queue_j, rate_bps, 0.02, entropy, 0.6, 2.0, 4.0, 0.5, 0.25)


def _gelato(**kw: float) -> GelatoPolicy:
    # the observation-entropy estimator: these tests check the search, given alpha^(H-bar)
    policy = GelatoPolicy(estimator="entropy_ema", **kw)  # type: ignore[arg-type]
    system = system_setting("legacy_300m")  # the budgets and rates below are sized for it
    policy.configure(system, EnergyBudget("per_round", 0.2), topp_size_mean=4.0)
    return policy


def test_expected_tokens_closed_form() -> None:
    alpha = 0.7
    brute = [sum(alpha**i for i in range(g + 1)) for g in range(9)]
    np.testing.assert_allclose(expected_tokens(alpha, np.arange(9)), brute)
    np.testing.assert_allclose(expected_tokens(1.0, [0, 3]), [1.0, 4.0])


def test_plan_is_exhaustive_argmax_of_dpp_score() -> None:
    policy = _gelato(v=1.0)
    model = RoundCostModel(system_setting("legacy_300m"), EnergyBudget("per_round", 0.2), 4.0)
    for q in (0.0, 0.5, 3.0, 30.0):
        for h in (0.2, 1.0, 3.0):
            plan = policy.plan(_obs(queue_j=q, entropy=h))
            alpha = min(math.exp(-0.35 * h), 0.99)
            f = model.forecast(6e6, alpha)
            scores = [f.n_tokens[g] / f.latency_s[g] - q * f.energy_j[g] for g in range(9)]
            assert plan.budget == int(np.argmax(scores))
            assert plan.alpha == pytest.approx(alpha)


def test_budget_shrinks_with_queue_and_entropy() -> None:
    policy = _gelato(v=1.0)
    budgets_q = [policy.plan(_obs(queue_j=q, entropy=0.1)).budget for q in (0.0, 1.0, 5.0, 50.0)]
    assert budgets_q == sorted(budgets_q, reverse=True)
    assert budgets_q[0] > budgets_q[-1] == 0
    budgets_h = [policy.plan(_obs(queue_j=0.5, entropy=h)).budget for h in (0.0, 1.0, 3.0, 8.0)]
    assert budgets_h == sorted(budgets_h, reverse=True)


def test_unbound_gelato_raises() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        GelatoPolicy().predict(np.zeros(9, dtype=np.float32))


def test_predict_round_trips_through_the_observation() -> None:
    policy = _gelato(v=1.0)
    spec = ObservationSpec()
    obs = spec.encode(_obs(queue_j=0.3, entropy=0.5))
    action, _ = policy.predict(obs)
    assert int(action) == policy.plan(spec.decode(obs)).budget
    assert policy.last_plan is not None
    assert policy.last_plan.budget == int(action)


def test_budget_threshold_mode_picks_a_level() -> None:
    policy = _gelato(v=1.0)
    policy.action_mode = "budget_threshold"
    policy.threshold_levels_nats = (0.5, 1.0, 1.5, 2.0, 3.0)
    low_q = policy.decide(_obs(queue_j=0.0, entropy=0.5))
    high_q = policy.decide(_obs(queue_j=2.0, entropy=0.5))
    assert low_q.threshold_level is not None
    assert high_q.threshold_level is not None
    # an energy-stressed device tolerates less entropy before exiting
    assert high_q.threshold_level <= low_q.threshold_level


def test_marginal_utility_rule() -> None:
    policy = _gelato(v=1.0)
    rule = policy.marginal_utility_rule(_obs(queue_j=0.0))
    confident = np.zeros(8)
    assert realized_length(rule, confident, np.ones(8), 8) == 8  # free energy, sure tokens
    stressed = policy.marginal_utility_rule(_obs(queue_j=100.0))
    assert realized_length(stressed, confident, np.ones(8), 8) == 1
    uncertain = np.array([0.1, 0.1, 9.0, 0.1, 0.1, 0.1, 0.1, 0.1])
    mid = policy.marginal_utility_rule(_obs(queue_j=0.5))
    assert realized_length(mid, uncertain, np.ones(8), 8) <= 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latency_s": (0.1,), "energy_j": (0.1,)}, "same length >= 2"),
        ({"latency_s": (0.1, 0.2), "energy_j": (0.1,)}, "same length >= 2"),
        ({"latency_s": (0.0, 0.2), "energy_j": (0.1, 0.2)}, "latency_s must be > 0"),
        ({"v": 0.0}, "v must be > 0"),
    ],
)
def test_marginal_utility_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"v": 1.0, "queue_j": 0.0, "latency_s": (0.1, 0.2), "energy_j": (0.1, 0.2)} | kwargs
    with pytest.raises(ValueError, match=match):
        MarginalUtility(**args)


# -- the acceptance estimator and calibration on SYNTHETIC traces with a known alpha(H) ----------


def _run_heldout(trace: Any, name: str = "gelato", budget: float = math.inf, **params: Any) -> Any:
    """``name`` on every held-out prompt of ``trace`` once (queue kept across episodes)."""
    held = heldout_prompts(trace)

    def make_env(kwargs: Any) -> GelatoEnv:
        backend = PromptSubset(ReplayBackend(trace), held)
        return GelatoEnv(backend=backend, budget_value=budget, **kwargs)

    policy = make_agent(name, **params)
    run = run_agent(policy, make_env, label=name, agent=name, n_episodes=len(held), seed=0)
    return run, policy


def test_running_mean_is_unbiased_on_a_known_alpha(alpha_trace_factory: Any) -> None:
    trace = alpha_trace_factory(n_prompts=250, length=160)
    held = heldout_prompts(trace)
    run, policy = _run_heldout(trace)
    check = acceptance_calibration(run, trace, held)
    assert check["n_verified"] > 5000
    # the calibrated law is the true one, and the planned alpha^ matches realized acceptance
    assert policy.calibration.b == pytest.approx(-0.35, abs=0.05)
    assert abs(check["relative_error"]) < 0.02, check  # every planned round vs the trace
    assert abs(check["relative_error_weighted"]) < 0.02, check  # over the verified tokens
    # the old reading alpha^(H-bar) (observation EMA, paper a and b, fixed exit) is biased low
    old, _ = _run_heldout(
        trace, estimator="entropy_ema", fit_acceptance=False,
        exit_params={"threshold_nats": 1.0, "bucket_nats": 1.0},
    )  # fmt: skip
    assert acceptance_calibration(old, trace, held)["relative_error"] < -0.10


def test_next_token_acceptance_reads_each_rounds_position(alpha_trace_factory: Any) -> None:
    trace = alpha_trace_factory(n_prompts=250, length=160)
    held = heldout_prompts(trace)
    run, _ = _run_heldout(trace, "target_only")  # one token per round: every position once
    rows = np.concatenate([np.arange(trace.prompt_offsets[p], trace.prompt_offsets[p + 1])
                           for p in held])  # fmt: skip
    expected = float(np.mean(trace.accept_prob[rows, 0]))
    assert acceptance_calibration(run, trace, held)["next_token_acceptance"] == pytest.approx(
        expected
    )


def test_gelato_never_stops_drafting_for_good(alpha_trace_factory: Any) -> None:
    # a stretch of hopeless drafts (H = 9 nats, alpha = 0.04) early in every prompt
    trace = alpha_trace_factory(n_prompts=60, length=120, spike=(10, 22, 9.0), seed=1)
    run, _ = _run_heldout(trace)
    assert stopped_drafting(run) == 0
    assert (run.rounds["budget"] == 0).any()  # it did pause through the stretch
    # the EMA reading, not updated by gamma~ = 0 rounds, stays locked once it pauses
    old, _ = _run_heldout(trace, estimator="entropy_ema", fit_acceptance=False)
    assert stopped_drafting(old) > 0


def test_idle_rounds_revert_to_the_prior() -> None:
    est = AcceptanceEstimator(1.0, -0.35, 0.99, prior=0.8, window_tokens=4)
    est.observe([9.0] * 20)
    assert est.value < 0.1
    for _ in range(20):
        est.idle()
    assert est.value == pytest.approx(0.8, abs=0.01)
    est.reset()
    assert est.value == 0.8


def test_update_feeds_verified_tokens_only() -> None:
    policy = GelatoPolicy(alpha_window_tokens=1.0)  # the estimate is the last fed token's
    info = {"n_drafted": 3, "n_accepted": 0, "entropies": (0.0, 9.0, 9.0)}
    policy.update(info)
    assert policy.acceptance.value == pytest.approx(0.99)  # only the rejected first token
    policy.estimator_tokens = "drafted"
    policy.update(info)
    assert policy.acceptance.value == pytest.approx(math.exp(-0.35 * 9.0))


def test_calibration_uses_training_prompts_only(alpha_trace_factory: Any) -> None:
    trace = alpha_trace_factory(n_prompts=250, length=160)
    _, policy = _run_heldout(trace)
    assert policy.calibration.n_prompts == 200  # 250 minus the 50 held out
    assert set(training_prompts(trace)).isdisjoint(heldout_prompts(trace))
    # thresholds come from the calibration, not the rule's defaults
    assert policy.exit_params != {"threshold_nats": 1.0, "bucket_nats": 1.0}
    assert policy.calibration.exit_params == policy.exit_params


def test_calibrated_exit_beats_or_matches_no_exit(alpha_trace_factory: Any) -> None:
    trace = alpha_trace_factory(n_prompts=40, length=100)
    lat = 0.05 + 0.014 * np.arange(9)
    energy = 0.1 + 0.2 * np.arange(9)
    result = calibrate_entropy_bucket(trace, None, lat, energy, objective="edp")
    assert result.score >= result.no_exit_score
    with pytest.raises(ValueError, match="objective must be one of"):
        calibrate_entropy_bucket(trace, None, lat, energy, objective="speed")


def test_live_gelato_without_a_trace_warns_and_names_its_fallback(make_live_env: Any) -> None:
    env = make_live_env()
    with pytest.warns(UserWarning, match="found no trace to calibrate on"):
        GelatoPolicy().bind(env)


def test_live_and_replay_gelato_plan_identically(micro_trace: Any, make_live_env: Any) -> None:
    def replay_env(kwargs: Any) -> GelatoEnv:
        return GelatoEnv(trace_path=str(micro_trace.path), **kwargs)

    def live_env(kwargs: Any) -> GelatoEnv:
        return make_live_env(**kwargs)

    kw = {"label": "gelato", "agent": "gelato", "n_episodes": 3, "seed": 0}
    params = {"calibration_trace": str(micro_trace.path)}
    replay_policy, live_policy = GelatoPolicy(**params), GelatoPolicy(**params)  # type: ignore[arg-type]
    replay = run_agent(replay_policy, replay_env, **kw)  # type: ignore[arg-type]
    live = run_agent(live_policy, live_env, **kw)  # type: ignore[arg-type]
    for key in ("budget", "n_drafted", "n_accepted"):
        np.testing.assert_array_equal(live.rounds[key], replay.rounds[key], err_msg=key)
    # the same statistics, up to the float32 in which the trace stores entropies
    for key in ("alpha_hat", "queue"):
        np.testing.assert_allclose(live.rounds[key], replay.rounds[key], rtol=1e-4, err_msg=key)
    assert live_policy.calibration == replay_policy.calibration
    assert live.outputs == replay.outputs


@pytest.fixture
def make_live_env(micro_pair: Any, micro_trace: Any) -> Any:
    """Greedy live envs on the micro pair serving exactly the micro trace's prompts."""
    from gelato_env.sd.engine import LiveBackend, SpeculativeDecoder

    draft, target = micro_pair
    header = micro_trace.header
    prompts = [micro_trace.prompt_ids_of(i).tolist() for i in range(micro_trace.n_prompts)]

    def make(**kwargs: Any) -> GelatoEnv:
        decoder = SpeculativeDecoder(
            draft, target, gamma_max=header.gamma_max, max_new_tokens=header.max_new_tokens,
            eos_token_id=header.eos_token_id,
        )  # fmt: skip
        return GelatoEnv(backend=LiveBackend(decoder, prompts), **kwargs)

    return make


def test_window_calibration_prefers_short_windows_when_acceptance_persists(
    alpha_trace_factory: Any,
) -> None:
    from gelato_env.traces.fit import calibrate_acceptance_window, pair_statistics

    persistent = alpha_trace_factory(n_prompts=40, length=100, phi=0.95, seed=5)
    shuffled = alpha_trace_factory(n_prompts=40, length=100, phi=0.0, seed=5)
    windows = []
    for trace in (persistent, shuffled):
        stats = pair_statistics(trace)
        windows.append(calibrate_acceptance_window(trace, None, stats.fit, stats.alpha_mean))
    assert windows[0].window_tokens < windows[1].window_tokens
    assert windows[1].window_tokens >= 8  # i.i.d. difficulty: average the noise away
