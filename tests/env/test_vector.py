"""The native vector env against N single envs (SyncVectorEnv), its statistics, and SB3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest

from gelato_env.env import GelatoEnv
from gelato_env.registration import ENV_ID
from gelato_env.sd.exit_rules import (
    EXIT_RULES,
)
from gelato_env.traces.store import COLUMNS, Trace, write_trace
from gelato_env.vector import (
    RESET_INFO_KEYS,
    STEP_INFO_KEYS,
    GelatoVectorEnv,
    make_sb3_vec_env,
)

N_ENVS = 5


def _quantile_params(trace: Trace) -> dict[str, dict[str, float]]:
    """Exit-rule parameters at quantiles of the trace's own statistics, so every rule bites."""
    h = np.asarray(trace.entropy, dtype=np.float64)
    mp = np.asarray(trace.max_prob, dtype=np.float64)
    return {
        "none": {},
        "entropy_threshold": {"threshold_nats": float(np.quantile(h, 0.7))},
        "entropy_bucket": {
            "threshold_nats": float(np.quantile(h, 0.4)),
            "bucket_nats": float(np.quantile(h, 0.5) - np.quantile(h, 0.4)),
        },
        "survival": {"b": -0.5 / max(float(np.mean(h)), 1e-3), "epsilon": 0.5},
        "confidence": {"min_prob": float(np.quantile(mp, 0.3))},
        "adaedl": {"scale": 1.0 / max(float(np.quantile(h, 0.9)), 1e-3), "threshold": 0.2},
    }


def _sync(n: int, kwargs: dict[str, Any], autoreset: str) -> gym.vector.SyncVectorEnv:
    horizon = kwargs.get("horizon")

    def make() -> gym.Env[Any, Any]:
        env: gym.Env[Any, Any] = GelatoEnv(**kwargs)
        return gym.wrappers.TimeLimit(env, horizon) if horizon else env

    mode = {"same_step": gym.vector.AutoresetMode.SAME_STEP}.get(
        autoreset, gym.vector.AutoresetMode.NEXT_STEP
    )
    return gym.vector.SyncVectorEnv([make] * n, autoreset_mode=mode)


def _assert_infos_equal(
    ours: dict[str, Any], theirs: dict[str, Any], keys: tuple[str, ...]
) -> None:
    for key in keys:
        if key not in theirs:
            assert not ours[f"_{key}"].any(), key
            continue
        mask = theirs[f"_{key}"]
        np.testing.assert_array_equal(ours[f"_{key}"], mask, err_msg=key)
        np.testing.assert_array_equal(ours[key][mask], theirs[key][mask], err_msg=key)
        assert ours[key].dtype == theirs[key].dtype, key


def _actions(space: gym.Space[Any], gen: np.random.Generator, n: int) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return gen.integers(0, int(space.n), size=n)
    assert isinstance(space, gym.spaces.MultiDiscrete)
    return gen.integers(0, space.nvec, size=(n, *space.shape))


def _compare(kwargs: dict[str, Any], autoreset: str, n_steps: int, seed: int = 11) -> int:
    """Step both with the same actions; assert identical outputs; return episode ends seen."""
    ours = GelatoVectorEnv(N_ENVS, rng="per_env", autoreset_mode=autoreset, **kwargs)
    return _step_both(ours, _sync(N_ENVS, kwargs, autoreset), n_steps, seed)


def _step_both(ours: Any, theirs: Any, n_steps: int, seed: int) -> int:
    obs_a, info_a = ours.reset(seed=seed)
    obs_b, info_b = theirs.reset(seed=seed)
    np.testing.assert_array_equal(obs_a, obs_b)
    _assert_infos_equal(info_a, info_b, RESET_INFO_KEYS)
    gen = np.random.default_rng(seed)
    n_done = 0
    for _ in range(n_steps):
        actions = _actions(ours.single_action_space, gen, N_ENVS)
        a = ours.step(actions)
        b = theirs.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        _assert_infos_equal(a[4], b[4], STEP_INFO_KEYS)
        if "final_obs" in b[4]:
            done = b[4]["_final_obs"]
            np.testing.assert_array_equal(a[4]["_final_obs"], done)
            np.testing.assert_array_equal(
                a[4]["final_obs"][done], np.stack(b[4]["final_obs"][done])
            )
            _assert_infos_equal(a[4]["final_info"], b[4]["final_info"], STEP_INFO_KEYS)
        n_done += int((a[2] | a[3]).sum())
    return n_done


CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "dpp_per_token_gauss_markov": {
        "reward_mode": "dpp",
        "v": 5.0,
        "budget_mode": "per_token",
        "budget_value": 0.05,
        "channel": "gauss_markov",
    },
    "horizon_sequential_two_state": {
        "horizon": 25,
        "prompt_order": "sequential",
        "channel": "two_state",
        "budget_mode": "per_second",
        "budget_value": 1.0,
    },
    "budget_threshold_full_payload": {"action_mode": "budget_threshold", "payload": "full"},
    "dssd_short_generations": {"payload": "dssd", "max_new_tokens": 12},
}


@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_per_env_rng_reproduces_sync_vector_env(trace_path: str, name: str, autoreset: str) -> None:
    n_done = _compare({"trace_path": trace_path, **CONFIGS[name]}, autoreset, n_steps=60)
    assert n_done > 0  # episodes ended and were reset inside the comparison


@pytest.mark.parametrize(
    "mode", [gym.vector.AutoresetMode.SAME_STEP, gym.vector.AutoresetMode.NEXT_STEP]
)
def test_make_vec_builds_the_vector_env_equal_to_sync_in_its_autoreset_mode(
    trace_path: str, mode: gym.vector.AutoresetMode
) -> None:
    """The id's vector entry point against make_vec's SyncVectorEnv in the mode it states."""
    kwargs = {"trace_path": trace_path, "max_new_tokens": 12, "channel": "gauss_markov"}
    ours = gym.make_vec(
        ENV_ID, N_ENVS, vectorization_mode="vector_entry_point", rng="per_env",
        autoreset_mode=mode, **kwargs,
    )  # fmt: skip
    assert type(ours) is GelatoVectorEnv
    assert ours.metadata["autoreset_mode"] is mode
    theirs = gym.make_vec(
        ENV_ID, N_ENVS, vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": ours.metadata["autoreset_mode"]}, **kwargs,
    )  # fmt: skip
    assert _step_both(ours, theirs, n_steps=40, seed=3) > 0
    default = gym.make_vec(ENV_ID, 2, trace_path=trace_path)  # the entry point by default
    assert type(default) is GelatoVectorEnv
    assert default.metadata["autoreset_mode"] is gym.vector.AutoresetMode.SAME_STEP


@pytest.mark.parametrize("rule", ["none", "entropy_threshold", "survival", "confidence", "adaedl"])
def test_per_env_rng_reproduces_every_exit_rule(trace_path: str, micro_trace, rule: str) -> None:  # type: ignore[no-untyped-def]
    params = _quantile_params(micro_trace)[rule]
    _compare({"trace_path": trace_path, "exit_rule": rule, "exit_params": params}, "same_step", 40)


@dataclass(frozen=True)
class _StopBelow:
    """A custom exit rule (not one the vector env tabulates): stop after max-prob < min_prob."""

    name: ClassVar[str] = "stop_below"
    min_prob: float = 0.5

    def stop_after(self, entropy: np.ndarray, max_prob: np.ndarray) -> int:
        hits = np.flatnonzero(max_prob < self.min_prob)
        return int(hits[0]) + 1 if hits.size else 0


def test_per_env_rng_reproduces_a_custom_exit_rule(
    trace_path: str, micro_trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(EXIT_RULES, _StopBelow.name, _StopBelow)
    min_prob = float(np.quantile(np.asarray(micro_trace.max_prob), 0.3))
    kwargs = {"trace_path": trace_path, "exit_rule": "stop_below"}
    assert GelatoVectorEnv(2, **kwargs)._tables.rounds.stops is None  # the per-round path
    _compare({**kwargs, "exit_params": {"min_prob": min_prob}}, "same_step", 40)


def test_step_infos_stay_valid_after_later_steps(trace_path: str) -> None:
    env = GelatoVectorEnv(6, trace_path=trace_path, rng="per_env", max_new_tokens=10)
    env.reset(seed=0)
    gen = np.random.default_rng(0)
    infos = [env.step(gen.integers(0, 9, size=6))[4] for _ in range(12)]
    assert any("final_info" in info for info in infos)  # resets happened in between
    env.reset(seed=0)
    gen = np.random.default_rng(0)
    for info in infos:  # a replay of the same steps: the kept infos were not overwritten
        again = env.step(gen.integers(0, 9, size=6))[4]
        for key in STEP_INFO_KEYS:
            np.testing.assert_array_equal(info[key], again[key], err_msg=key)
            np.testing.assert_array_equal(info[f"_{key}"], again[f"_{key}"], err_msg=key)


def _synthetic_sampled_trace(root: Path, n_prompts: int = 4, length: int = 30, g: int = 8) -> str:
    """A SYNTHETIC trace at T = 0.7 (random statistics, written directly): sampled replay only."""
    gen = np.random.default_rng(5)
    n_pos = n_prompts * length
    arrays: dict[str, Any] = {
        "target_tokens": gen.integers(2, 64, size=n_pos),
        "draft_tokens": gen.integers(2, 64, size=(n_pos, g)),
        "entropy": gen.gamma(2.0, 0.5, size=(n_pos, g)),
        "max_prob": gen.uniform(0.1, 1.0, size=(n_pos, g)),
        "topp_size": gen.integers(1, 20, size=(n_pos, g)),
        "accept_prob": gen.uniform(0.0, 1.0, size=(n_pos, g)),
    }
    arrays = {k: np.asarray(v, dtype=COLUMNS[k][0]) for k, v in arrays.items()}
    arrays["prompt_offsets"] = np.arange(0, n_pos + 1, length, dtype=np.int64)
    arrays["prompt_tokens"] = np.arange(2, 2 + 3 * n_prompts, dtype=np.int32)
    arrays["prompt_token_offsets"] = np.arange(0, 3 * n_prompts + 1, 3, dtype=np.int64)
    meta = {
        "code_version": "test",
        "draft_id": "synthetic",
        "target_id": "synthetic",
        "tokenizer_sha256": "none",
        "vocab_size": 64,
        "eos_token_id": None,
        "temperature": 0.7,
        "gamma_max": g,
        "p_top": 0.9,
        "max_new_tokens": length,
        "seed": 0,
        "prompt_set": "synthetic",
        "prompt_ids": [f"s{i}" for i in range(n_prompts)],
    }
    write_trace(root, meta, arrays)
    return str(root)


def test_per_env_rng_reproduces_sampled_replay(tmp_path: Path) -> None:
    path = _synthetic_sampled_trace(tmp_path / "sampled")
    assert _compare({"trace_path": path}, "same_step", n_steps=50) > 0


def _means(env: GelatoVectorEnv, seed: int, n_steps: int, budget: int) -> dict[str, float]:
    env.reset(seed=seed)
    logs: dict[str, list[np.ndarray]] = {"n_tokens": [], "latency_s": [], "rate_bps": []}
    actions = np.full(env.num_envs, budget)
    for _ in range(n_steps):
        info = env.step(actions)[4]
        for key, values in logs.items():
            values.append(info[key][info[f"_{key}"]])
    return {k: float(np.mean(np.concatenate(v))) for k, v in logs.items()} | {
        f"{k}_se": float(np.std(np.concatenate(v)) / np.sqrt(sum(len(x) for x in v)))
        for k, v in logs.items()
    }


@pytest.mark.parametrize("trace", ["greedy", "sampled"])
def test_batched_rng_matches_per_env_statistics(
    trace_path: str, tmp_path: Path, trace: str
) -> None:
    path = trace_path if trace == "greedy" else _synthetic_sampled_trace(tmp_path / "s")
    batched = _means(GelatoVectorEnv(200, trace_path=path, rng="batched"), 1, 30, 5)
    exact = _means(GelatoVectorEnv(200, trace_path=path, rng="per_env"), 2, 30, 5)
    for key in ("n_tokens", "latency_s", "rate_bps"):
        se = np.hypot(batched[f"{key}_se"], exact[f"{key}_se"])
        assert abs(batched[key] - exact[key]) < 5 * se, key  # rounds are correlated: loose bound


def test_batched_rng_is_seeded_and_envs_differ(trace_path: str) -> None:
    def rollout() -> list[np.ndarray]:
        env = GelatoVectorEnv(8, trace_path=trace_path, rng="batched")
        out = [env.reset(seed=3)[0]]
        gen = np.random.default_rng(0)
        for _ in range(30):
            out.append(env.step(gen.integers(0, 9, size=8))[0])
        return out

    first, second = rollout(), rollout()
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    assert len({row.tobytes() for row in first[0]}) > 1  # envs draw different channels


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_envs": 0}, ValueError, "num_envs must be an int >= 1, got 0"),
        ({"rng": "shared"}, ValueError, "rng must be one of"),
        ({"autoreset_mode": "never"}, ValueError, "autoreset_mode must be one of"),
        ({"action_mode": "per_token"}, NotImplementedError, "per_token"),
        ({"backend": "live"}, NotImplementedError, "replays traces only"),
        ({"ema_decay": 1.5}, ValueError, "ema_decay"),
    ],
)
def test_constructor_errors(
    trace_path: str, kwargs: dict[str, Any], error: type, match: str
) -> None:
    args = {"num_envs": 2, "trace_path": trace_path, **kwargs}
    with pytest.raises(error, match=match):
        GelatoVectorEnv(**args)


def test_reset_mask_and_keep_queue(trace_path: str) -> None:
    env = GelatoVectorEnv(3, trace_path=trace_path, budget_value=0.01, rng="per_env")
    env.reset(seed=0)
    for _ in range(5):
        info = env.step(np.full(3, 8))[4]
    queue = info["queue"].copy()
    assert (queue > 0).all()
    _, info = env.reset(options={"reset_mask": np.array([True, False, False])})
    np.testing.assert_array_equal(info["queue"], [0.0, queue[1], queue[2]])
    _, info = env.reset(options={"keep_queue": True})
    np.testing.assert_array_equal(info["queue"], [0.0, queue[1], queue[2]])
    assert (info["n_generated"] == 0).all()


def test_sb3_trains_on_the_vector_env(trace_path: str) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    venv = make_sb3_vec_env(GelatoVectorEnv(4, trace_path=trace_path, max_new_tokens=10))
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (4, 9)
    venv.step_async(np.full(4, 8))
    for _ in range(10):
        obs, _, dones, infos = venv.step_wait()
        venv.step_async(np.full(4, 8))
        if dones.any():
            break
    i = int(np.flatnonzero(dones)[0])
    assert infos[i]["terminal_observation"].shape == (9,)
    assert infos[i]["terminal_observation"][8] == 1.0  # progress: the generation finished
    assert obs[i][8] == 0.0  # already reset (same-step autoreset)
    model = PPO("MlpPolicy", VecMonitor(venv), n_steps=16, batch_size=32, n_epochs=1, seed=0)
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64
    with pytest.raises(ValueError, match="same_step"):
        make_sb3_vec_env(GelatoVectorEnv(2, trace_path=trace_path, autoreset_mode="next_step"))


def test_batched_closed_form_emas_match_the_token_by_token_loop(trace_path: str) -> None:
    """rng="batched": beta^k * ema + c[pos, k] equals the per-token EMA loop up to rounding."""
    env = GelatoVectorEnv(1, trace_path=trace_path, ema_decay=0.7)
    tab, g = env._tables, env.params.gamma_max
    n_pos = tab.ema_terms.shape[0]
    offsets = tab.drafted.reshape(n_pos, g + 1, 4)[:, :, 2:]
    start = np.random.default_rng(0).uniform(0.0, 3.0, size=(n_pos, 2))
    ema = start.copy()
    for k in range(g + 1):
        closed = tab.ema_decay_pow[k] * start + offsets[:, k]
        np.testing.assert_allclose(closed, ema, rtol=1e-12, atol=1e-15, err_msg=f"k={k}")
        if k < g:
            ema = 0.7 * ema + tab.ema_terms[:, k]
