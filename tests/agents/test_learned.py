"""Learned agents: prompt split, envs, Lagrangian reward, checkpoints, determinism, LearnedPolicy.

In-process, tiny budgets, on the micro trace (synthetic statistics)."""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.agent_card import AgentCard
from agents.callbacks import ResumableCheckpoint
from agents.checkpoints import RunState, latest_checkpoint, list_checkpoints
from agents.learned import LearnedPolicy
from agents.metrics_log import wandb_key
from agents.prompt_split import split_prompts
from agents.registry import make_agent
from agents.train_config import AlgoConfig, RewardConfig, TrainConfig, algorithm_class
from agents.train_envs import build_backend, env_factory, make_vec_env
from gelato_env.backends import PromptSubset
from gelato_env.config import EnvConfig


def _env_config(trace: Any, **overrides: Any) -> EnvConfig:
    return EnvConfig(trace_path=str(trace.path), system_overrides={"vocab_size": 64}, **overrides)


def test_split_is_disjoint_covering_and_order_free() -> None:
    ids = [f"prompt-{i}" for i in range(50)]
    split = split_prompts(ids, 0.2)
    assert len(split.eval) == 10
    assert len(split.train) == 40
    assert set(split.eval).isdisjoint(split.train)
    assert set(split.eval) | set(split.train) == set(range(50))
    # the held-out set depends on the ids, not their order
    reversed_split = split_prompts(ids[::-1], 0.2)
    assert {ids[::-1][i] for i in reversed_split.eval} == {ids[i] for i in split.eval}


@pytest.mark.parametrize(
    ("ids", "fraction", "match"),
    [(["a"], 0.5, "needs >= 2 prompts"), (["a", "b"], 0.0, "eval_fraction must be in"),
     (["a", "b"], 1.0, "eval_fraction must be in")],
)  # fmt: skip
def test_split_rejects_bad_input(ids: list[str], fraction: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        split_prompts(ids, fraction)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: AlgoConfig("sac"), "algo.name must be one of"),
        (lambda: RewardConfig("energy"), "reward.name must be one of"),
        (lambda: RewardConfig("lagrangian", lambda_init=-1.0), "lambda_init must be"),
        (lambda: TrainConfig(total_timesteps=0), "total_timesteps must be an int >= 1"),
        (lambda: TrainConfig(total_timesteps=8, vec_env="ray"), "vec_env must be one of"),
        (lambda: TrainConfig(total_timesteps=8, eval_freq=-1), "eval_freq must be an int >= 0"),
    ],
)
def test_configs_validate(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_prompt_subset_serves_only_its_prompts(micro_trace: Any) -> None:
    cfg = _env_config(micro_trace)
    subset = PromptSubset(build_backend(cfg), [4, 1])
    assert subset.n_prompts == 2
    assert subset.trace.header.prompt_ids == micro_trace.header.prompt_ids
    subset.reset(0, np.random.default_rng(0))
    while not subset.done:
        subset.run_round(8, _no_exit())
    assert subset.output_ids == micro_trace.output_of(4).tolist()
    with pytest.raises(ValueError, match=r"prompt indices \[9\] outside"):
        PromptSubset(build_backend(cfg), [9])


def _no_exit() -> Any:
    from gelato_env.sd.exit_rules import make_exit_rule

    return make_exit_rule("none")


def test_lagrangian_reward_subtracts_net_energy(micro_trace: Any) -> None:
    cfg = _env_config(micro_trace, reward_mode="lagrangian")
    plain = env_factory(cfg, [0, 1, 2])()
    wrapped = env_factory(cfg, [0, 1, 2], lagrangian=True, multiplier=3.0)()
    plain.reset(seed=5)
    wrapped.reset(seed=5)
    _, r0, *_, info0 = plain.step(4)
    _, r1, *_, info1 = wrapped.step(4)
    assert info1["reward_env"] == pytest.approx(r0)
    assert r1 == pytest.approx(r0 - 3.0 * (info0["cost"] - info0["allowance_j"]))
    with pytest.raises(ValueError, match="multiplier must be >= 0"):
        wrapped.get_wrapper_attr("set_multiplier")(-1.0)


def _tiny_ppo(trace: Any, seed: int, **env: Any) -> Any:
    cfg = _env_config(trace, horizon=16, **env)
    venv = make_vec_env(env_factory(cfg, [0, 1, 2, 3], lagrangian=env.get("reward_mode") ==
                                    "lagrangian"), 2, "dummy", seed)  # fmt: skip
    return algorithm_class("ppo")(
        "MlpPolicy", venv, seed=seed, n_steps=16, batch_size=16, n_epochs=1,
        policy_kwargs={"net_arch": [8]}, device="cpu",
    )  # fmt: skip


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_seeded_training_is_reproducible(micro_trace: Any, algo: str) -> None:
    def run() -> tuple[np.ndarray, list[float]]:
        cfg = _env_config(micro_trace, horizon=16)
        venv = make_vec_env(env_factory(cfg, [0, 1, 2, 3]), 2, "dummy", 7)
        kwargs: dict[str, Any] = (
            {"n_steps": 16, "batch_size": 16, "n_epochs": 2} if algo == "ppo"
            else {"learning_starts": 16, "buffer_size": 500, "train_freq": 4}
        )  # fmt: skip
        model = algorithm_class(algo)("MlpPolicy", venv, seed=7, device="cpu",
                                      policy_kwargs={"net_arch": [8]}, **kwargs)  # fmt: skip
        model.learn(96)
        obs = np.random.default_rng(0).uniform(0, 1, size=(32, 9)).astype(np.float32)
        actions, _ = model.predict(obs, deterministic=True)
        returns = [float(ep["r"]) for ep in model.ep_info_buffer]
        return actions, returns

    (a1, r1), (a2, r2) = run(), run()
    np.testing.assert_array_equal(a1, a2)
    assert r1 == r2
    assert len(r1) > 0


def test_checkpoints_keep_the_newest_and_roundtrip_state(micro_trace: Any, tmp_path: Path) -> None:
    model = _tiny_ppo(micro_trace, 1)
    state = RunState(num_timesteps=0, wandb_id="abc", run_name="run", multiplier=1.5,
                     segments=((0, 10),))  # fmt: skip
    saved: list[int] = []
    ckpt = ResumableCheckpoint(16, tmp_path, lambda n: RunState(**{**state.__dict__,
                               "num_timesteps": n, "pending_log": ckpt.pending_log}), keep=2,
                               on_save=lambda c: saved.append(c.num_timesteps))  # fmt: skip
    model.learn(96, callback=ckpt)  # rollouts of 2 envs x 16 steps start at 0, 32, 64
    assert saved == [32, 64]  # PPO: at rollout starts past each multiple of 16, after the update
    ckpt.save()  # the final checkpoint, as scripts/train.py takes it
    assert saved == [32, 64, 96]
    assert [c.num_timesteps for c in list_checkpoints(tmp_path)] == [64, 96]
    latest = latest_checkpoint(tmp_path)
    assert latest is not None
    back = latest.run_state()
    assert back.num_timesteps == 96
    assert "train/value_loss" in back.pending_log  # the last update's losses, not yet dumped
    assert back.multiplier == 1.5
    assert back.segments == ((0, 10),)
    assert back.best_mean_reward == -math.inf
    assert latest_checkpoint(tmp_path / "nope") is None


def test_wandb_keys_are_namespaced() -> None:
    assert wandb_key("train/entropy_loss") == "losses/entropy_loss"
    assert wandb_key("rollout/ep_rew_mean") == "charts/episodic_return"
    assert wandb_key("energy/backlog_mean_j") == "energy/backlog_mean_j"


def _save_run(model: Any, cfg: EnvConfig, run_dir: Path) -> Path:
    model.save(run_dir / "model.zip")
    split = {"train": [0, 1, 2, 3], "eval": [4, 5]}
    card = AgentCard(algo="ppo", env=cfg.to_dict(), reward={"name": "throughput"}, split=split,
                     num_timesteps=0, seed=0)  # fmt: skip
    (run_dir / "agent.json").write_text(card.to_json())
    return run_dir


def test_learned_policy_matches_model_and_runs_in_harness(micro_trace: Any, tmp_path: Path) -> None:
    from agents.evaluation import run_agent
    from gelato_env.env import GelatoEnv

    model = _tiny_ppo(micro_trace, 2)
    cfg = _env_config(micro_trace, horizon=16)
    policy = make_agent("learned", path=str(_save_run(model, cfg, tmp_path)))
    obs = np.random.default_rng(1).uniform(0, 1, size=9).astype(np.float32)
    assert int(policy.predict(obs)[0]) == int(model.predict(obs, deterministic=True)[0])
    assert policy.env_overrides().env_kwargs()["exit_rule"] == "entropy_bucket"

    def make_env(kwargs: Any) -> GelatoEnv:  # the held-out side of the card's split
        backend = PromptSubset(build_backend(cfg), [4, 5])
        return GelatoEnv(**{**cfg.to_kwargs(), "horizon": None, **kwargs, "backend": backend})

    run = run_agent(policy, make_env, label="learned", agent="learned", n_episodes=2, seed=0)
    assert run.metrics()["throughput_tps"] > 0
    assert json.loads((tmp_path / "agent.json").read_text())["algo"] == "ppo"


def test_learned_policy_copies_share_normalization_and_act_alike(
    micro_trace: Any, tmp_path: Path
) -> None:
    from stable_baselines3.common.vec_env import VecNormalize

    model = _tiny_ppo(micro_trace, 4)
    run_dir = _save_run(model, _env_config(micro_trace), tmp_path)
    stats = VecNormalize(model.get_env(), norm_reward=False)
    stats.obs_rms.mean[:] = 0.5  # statistics that change the model's input
    stats.save(str(run_dir / "vecnormalize.pkl"))
    policy = LearnedPolicy(run_dir)
    twin = copy.deepcopy(policy)  # the harness plays copies (a loaded VecNormalize has no venv)
    assert twin._vecnormalize is policy._vecnormalize
    obs = np.random.default_rng(2).uniform(0, 1, size=(16, 9)).astype(np.float32)
    np.testing.assert_array_equal(twin.predict(obs)[0], policy.predict(obs)[0])
    normalized = stats.normalize_obs(obs)
    np.testing.assert_array_equal(
        policy.predict(obs)[0], model.predict(normalized, deterministic=True)[0]
    )


def test_learned_policy_errors_name_the_problem(micro_trace: Any, tmp_path: Path) -> None:
    from gelato_env.env import GelatoEnv

    with pytest.raises(ValueError, match=r"needs a trained run: set path="):
        LearnedPolicy().bind(None)
    with pytest.raises(FileNotFoundError, match="no trained model at"):
        LearnedPolicy(tmp_path)
    model = _tiny_ppo(micro_trace, 3)
    cfg = _env_config(micro_trace)
    _save_run(model, cfg, tmp_path)
    policy = LearnedPolicy(tmp_path)
    per_token = GelatoEnv(**{**cfg.to_kwargs(), "action_mode": "per_token"})
    with pytest.raises(ValueError, match="observation space"):
        policy.bind(per_token)
    other = GelatoEnv(**{**cfg.to_kwargs(), "budget_value": 0.5})
    with pytest.warns(UserWarning, match=r"different env settings \['budget_value'\]"):
        policy.bind(other)
    # the system is compared as the parameters it resolves to: a redundant override is no change
    bandwidth = GelatoEnv(**cfg.to_kwargs()).params.radio.bandwidth_hz
    overrides = dict(cfg.system_overrides)
    same = GelatoEnv(
        **{**cfg.to_kwargs(), "system_overrides": {**overrides, "bandwidth_hz": bandwidth}}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy.bind(same)
    wider = GelatoEnv(
        **{**cfg.to_kwargs(), "system_overrides": {**overrides, "bandwidth_hz": 2 * bandwidth}}
    )
    with pytest.warns(UserWarning, match=r"different env settings \['system'\]"):
        policy.bind(wider)
    (tmp_path / "agent.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid agent card"):
        LearnedPolicy(tmp_path)
