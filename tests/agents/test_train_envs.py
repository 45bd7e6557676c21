"""Training envs: gelato's vector env under SB3 against SB3's DummyVecEnv of single envs.

In-process, tiny budgets, on the micro trace (greedy, synthetic statistics). With ``rng="per_env"``
gelato's vector env plays env i exactly as a single env seeded ``seed + i``, so the two
vectorizations of :func:`agents.train_envs.make_training_env` must give the same rewards, infos
and episode statistics step for step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.callbacks import LagrangeMultiplier, SDMetrics
from agents.prompt_split import subset_trace
from agents.train_config import algorithm_class
from agents.train_envs import (
    build_backend,
    env_factory,
    gelato_vec_env,
    make_training_env,
    make_vec_env,
    resolve_vec_env,
)
from gelato_env.backends import PromptSubset
from gelato_env.config import EnvConfig
from gelato_env.sd.exit_rules import make_exit_rule
from gelato_env.traces.replay import ReplayBackend

PROMPTS = (4, 1, 3)


def _env_config(trace: Any, **overrides: Any) -> EnvConfig:
    return EnvConfig(trace_path=str(trace.path), system_overrides={"vocab_size": 64}, **overrides)


def _outputs(backend: Any, n_prompts: int) -> list[list[int]]:
    outputs = []
    for i in range(n_prompts):
        backend.reset(i, np.random.default_rng(0))
        out: list[int] = []
        while not backend.done:
            result = backend.run_round(3, make_exit_rule("none"))
            out.extend(int(t) for t in result.tokens)
        outputs.append(out)
    return outputs


def test_subset_trace_replays_the_chosen_prompts(micro_trace: Any) -> None:
    sub = subset_trace(micro_trace, PROMPTS)
    assert sub.header.prompt_ids == tuple(micro_trace.header.prompt_ids[i] for i in PROMPTS)
    assert sub.n_positions == sum(len(micro_trace.output_of(i)) for i in PROMPTS)
    assert sub.header.checksum != micro_trace.header.checksum
    for j, i in enumerate(PROMPTS):
        assert sub.output_of(j).tolist() == micro_trace.output_of(i).tolist()
        assert sub.prompt_ids_of(j).tolist() == micro_trace.prompt_ids_of(i).tolist()
    via_subset = PromptSubset(ReplayBackend(micro_trace), PROMPTS)
    assert _outputs(ReplayBackend(sub), 3) == _outputs(via_subset, 3)
    with pytest.raises(ValueError, match=r"prompt indices \[6\] outside \[0, 6\)"):
        subset_trace(micro_trace, [0, 6])


@pytest.mark.parametrize(
    ("kind", "overrides", "expected"),
    [
        ("auto", {}, "gelato"),
        ("auto", {"action_mode": "per_token"}, "dummy"),
        ("subproc", {}, "subproc"),
        ("gelato", {"action_mode": "budget_threshold"}, "gelato"),
    ],
)
def test_resolve_vec_env(micro_trace: Any, kind: str, overrides: Any, expected: str) -> None:
    assert resolve_vec_env(kind, _env_config(micro_trace, **overrides)) == expected


@pytest.mark.parametrize(
    ("kind", "overrides", "match"),
    [
        ("gelato", {"action_mode": "per_token"}, "vec_env 'gelato' replays traces one round"),
        ("ray", {}, r"vec_env must be one of"),
    ],
)
def test_resolve_vec_env_refuses(micro_trace: Any, kind: str, overrides: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_vec_env(kind, _env_config(micro_trace, **overrides))


def _rollout(venv: Any, actions: np.ndarray) -> list[tuple[Any, ...]]:
    """(obs, rewards, dones, infos without terminal_observation) of each step."""
    steps = [(venv.reset(),)]
    for action in actions:
        obs, rewards, dones, infos = venv.step(action)
        clean = [{k: v for k, v in info.items() if k != "terminal_observation"} for info in infos]
        steps.append((obs, rewards, dones, clean))
    return steps


@pytest.mark.parametrize("lagrangian", [False, True])
def test_gelato_vec_env_matches_dummy_vec_env(micro_trace: Any, lagrangian: bool) -> None:
    cfg = _env_config(micro_trace, horizon=12, budget_value=0.3)
    n, seed = 3, 11
    gelato = gelato_vec_env(
        cfg, PROMPTS, n, seed, lagrangian=lagrangian, multiplier=2.0, rng="per_env"
    )
    thunk = env_factory(cfg, PROMPTS, lagrangian=lagrangian, multiplier=2.0)
    dummy = make_vec_env(thunk, n, "dummy", seed)
    actions = np.random.default_rng(0).integers(0, 9, size=(40, n))
    ours, theirs = _rollout(gelato, actions), _rollout(dummy, actions)
    np.testing.assert_array_equal(ours[0][0], theirs[0][0])
    n_stats = 0
    for (o1, r1, d1, i1), (o2, r2, d2, i2) in zip(ours[1:], theirs[1:], strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_allclose(r1, r2, rtol=1e-6)  # SB3 VecEnvs hand out float32 rewards
        np.testing.assert_array_equal(d1, d2)
        for a, b in zip(i1, i2, strict=True):
            for key in ("cost", "allowance_j", "n_tokens", "queue", "episode_stats"):
                assert a.get(key) == b.get(key), key
            assert a.get("episode", {}).get("r") == pytest.approx(b.get("episode", {}).get("r"))
            n_stats += "episode_stats" in a
    assert n_stats >= n  # every env finished at least one 12-round episode


def _tiny_ppo(trace: Any, kind: str, **env: Any) -> Any:
    cfg = _env_config(trace, horizon=16, **env)
    lagrangian = env.get("reward_mode") == "lagrangian"
    venv = make_training_env(cfg, [0, 1, 2, 3], n_envs=2, kind=kind, seed=0, lagrangian=lagrangian)
    return algorithm_class("ppo")(
        "MlpPolicy", venv, seed=0, n_steps=16, batch_size=16, n_epochs=1,
        policy_kwargs={"net_arch": [8]}, device="cpu",
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["gelato", "dummy"])
def test_multiplier_rises_and_reaches_the_envs(micro_trace: Any, kind: str) -> None:
    # 0.02 J/round is below any SD round's energy: the constraint is violated every round
    model = _tiny_ppo(micro_trace, kind, reward_mode="lagrangian", budget_value=0.02)
    callback = LagrangeMultiplier(lr=10.0, initial=0.5)
    model.learn(64, callback=[callback, SDMetrics()])
    assert callback.multiplier > 0.5
    assert model.get_env().get_attr("multiplier") == [callback.multiplier] * 2
    assert len(model.ep_info_buffer) > 0  # episodes reach SB3's Monitor statistics


def test_build_backend_refuses_live_and_missing_trace() -> None:
    with pytest.raises(ValueError, match=r"training needs env\.backend='replay'"):
        build_backend(EnvConfig(backend="live"))
    with pytest.raises(ValueError, match=r"env\.trace_path must be set"):
        build_backend(EnvConfig())
