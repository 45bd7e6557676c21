"""The envs a learned agent trains and is evaluated on: backends, wrappers, vectorization.

:func:`make_training_env` is what ``scripts/train.py`` calls. It vectorizes the training envs
one of three ways (``train.vec_env``, :data:`agents.train_config.VEC_ENVS`):

* ``gelato`` (what ``auto`` picks for a replay env): gelato's own
  :class:`gelato_env.vector.GelatoVectorEnv`, all envs stepped as numpy batch operations in one
  process, through its stable-baselines3 adapter (:func:`gelato_env.vector.make_sb3_vec_env`)::

      GelatoVectorEnv -> _StepTap -> [VectorLagrangianReward] -> SB3 adapter
          -> VecRoundInfos -> VecMonitor

  It replays the trace restricted to the training prompts
  (:func:`agents.prompt_split.subset_trace`); ``batched`` randomness [D] (each env's draws have
  the single env's distribution, docs/design.md §7). The adapter hands SB3 step infos only at
  episode ends; :class:`agents.vec_infos.VecRoundInfos` restores the per-step infos and the
  episode statistics that a ``DummyVecEnv`` of single envs gives, so the callbacks
  (:mod:`agents.callbacks`) see the same ``infos`` either way.
* ``dummy`` / ``subproc``: SB3's ``DummyVecEnv`` / ``SubprocVecEnv`` of single envs built by
  :func:`env_factory` (``Monitor(EpisodeStatistics(TimeLimit(GelatoEnv)))``, plus
  :class:`LagrangianReward`); the only choice for settings the vector env does not cover
  (``action_mode="per_token"``).

With the ``lagrangian`` reward, the penalty ``r_k - lambda (E_k - A_k)`` (:func:`lagrangian_reward`)
is applied per env (:class:`LagrangianReward`) or on arrays (:class:`VectorLagrangianReward`);
either exposes ``set_multiplier`` / ``multiplier`` to ``VecEnv.env_method`` / ``get_attr``, so
:class:`agents.callbacks.LagrangeMultiplier` drives both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium.vector import VectorEnv, VectorWrapper

from agents.prompt_split import subset_trace
from agents.train_config import VEC_ENVS
from gelato_env.backends import PromptSubset
from gelato_env.config import EnvConfig
from gelato_env.registration import make_env
from gelato_env.wrappers import EpisodeStatistics

if TYPE_CHECKING:
    from gelato_env.traces.replay import ReplayBackend
    from gelato_env.vector import GelatoVectorEnv

Reward = TypeVar("Reward", float, npt.NDArray[np.float64])


def lagrangian_reward(
    reward: Reward, cost_j: Reward, allowance_j: Reward, multiplier: float
) -> Reward:
    """The Lagrangian reward r_k - lambda (E_k - A_k), for one env or an array of envs.

    Args:
        reward: the env's reward r_k.
        cost_j: the round's device energy E_k (``info["cost"]``), J.
        allowance_j: the budget's allowance A_k (``info["allowance_j"]``), J.
        multiplier: lambda >= 0, tokens/s per J.

    >>> lagrangian_reward(10.0, 0.5, 0.2, 2.0)
    9.4
    """
    return reward - multiplier * (cost_j - allowance_j)


def _checked_multiplier(value: float) -> float:
    if not value >= 0.0:
        raise ValueError(f"multiplier must be >= 0, got {value}")
    return float(value)


class LagrangianReward(gym.Wrapper[Any, Any, Any, Any]):
    """Reward r_k - lambda (E_k - A_k): the Lagrangian of the long-term energy constraint.

    The constraint is sum_k (E_k - A_k) <= 0 with E_k = ``info["cost"]`` (J) and A_k =
    ``info["allowance_j"]`` the budget's allowance (``per_round``: A_k = E-bar, so the reward is
    r_k - lambda E_k up to the constant lambda E-bar). lambda is set from outside
    (:class:`agents.callbacks.LagrangeMultiplier` via ``VecEnv.env_method("set_multiplier")``).
    The single-env form of :class:`VectorLagrangianReward`.
    ``info["reward_env"]`` keeps the unpenalized reward.
    """

    def __init__(self, env: gym.Env[Any, Any], multiplier: float = 0.0) -> None:
        super().__init__(env)
        self.multiplier = float(multiplier)

    def set_multiplier(self, value: float) -> None:
        """Set lambda (>= 0), tokens/s per J."""
        self.multiplier = _checked_multiplier(value)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and penalize the round's net energy."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["reward_env"] = float(reward)
        shaped = lagrangian_reward(
            float(reward), float(info["cost"]), float(info["allowance_j"]), self.multiplier
        )
        return obs, shaped, terminated, truncated, info


def env_factory(
    env_config: EnvConfig,
    prompt_indices: Sequence[int],
    *,
    lagrangian: bool = False,
    multiplier: float = 0.0,
) -> Callable[[], gym.Env[Any, Any]]:
    """A picklable thunk building one training/evaluation env on a prompt subset.

    The env is ``Monitor(EpisodeStatistics(TimeLimit(GelatoEnv)))`` (plus
    :class:`LagrangianReward` when ``lagrangian``); the replay trace is loaded inside the thunk
    (milliseconds), so ``SubprocVecEnv`` workers do not receive it pickled.
    """
    indices = tuple(prompt_indices)

    def thunk() -> gym.Env[Any, Any]:
        from stable_baselines3.common.monitor import Monitor

        backend = PromptSubset(build_backend(env_config), indices)
        env: gym.Env[Any, Any] = EpisodeStatistics(make_env(env_config, backend=backend))
        if lagrangian:
            env = LagrangianReward(env, multiplier)
        return Monitor(env)

    return thunk


def build_backend(
    env_config: EnvConfig, prompt_indices: Sequence[int] | None = None
) -> ReplayBackend:
    """The replay backend a training env config describes: all its trace's prompts, or some.

    :func:`gelato_env.backends.replay_backend`; with ``prompt_indices`` it replays
    :func:`~agents.prompt_split.subset_trace` (subset prompt i is trace prompt
    ``prompt_indices[i]``), which gelato's vector env can replay. A single env may instead wrap
    the full backend in a :class:`~gelato_env.backends.PromptSubset`, which keeps the whole trace
    for calibration.

    Raises:
        ValueError: a live backend (learned agents train on recorded traces) or no trace path.
    """
    if env_config.backend != "replay":
        raise ValueError(f"training needs env.backend='replay', got {env_config.backend!r}")
    if env_config.trace_path is None:
        raise ValueError("env.trace_path must be set (the script resolves the default trace)")
    from gelato_env.backends import replay_backend
    from gelato_env.traces.replay import ReplayBackend

    backend = replay_backend(env_config)
    if prompt_indices is None:
        return backend
    trace = subset_trace(backend.trace, prompt_indices)
    return ReplayBackend(trace, gamma_max=backend.gamma_max, max_new_tokens=backend.max_new_tokens)


def resolve_vec_env(kind: str, env_config: EnvConfig) -> str:
    """The vectorization ``kind`` stands for with ``env_config``: ``auto`` resolved, others checked.

    Raises:
        ValueError: ``kind`` not in :data:`~agents.train_config.VEC_ENVS`, or ``gelato`` for a
            setting gelato's vector env does not cover (a live backend, ``per_token`` actions).
    """
    if kind not in VEC_ENVS:
        raise ValueError(f"vec_env must be one of {list(VEC_ENVS)}, got {kind!r}")
    vectorized = env_config.backend == "replay" and env_config.action_mode != "per_token"
    if kind == "auto":
        return "gelato" if vectorized else "dummy"
    if kind == "gelato" and not vectorized:
        raise ValueError(
            f"vec_env 'gelato' replays traces one round per step; got backend "
            f"{env_config.backend!r}, action_mode {env_config.action_mode!r} (use vec_env=dummy "
            "or subproc)"
        )
    return kind


def make_training_env(
    env_config: EnvConfig,
    prompt_indices: Sequence[int],
    *,
    n_envs: int,
    kind: str,
    seed: int,
    lagrangian: bool = False,
    multiplier: float = 0.0,
) -> Any:
    """The SB3 ``VecEnv`` of ``n_envs`` training envs on ``prompt_indices`` (module docstring).

    Args:
        env_config: the training env.
        prompt_indices: the trace prompts to train on (the split's training side).
        n_envs: parallel envs.
        kind: ``auto``, ``gelato``, ``dummy`` or ``subproc`` (:func:`resolve_vec_env`).
        seed: env i's first reset is seeded ``seed + i`` (the batch generator ``seed`` in
            ``gelato``'s batched mode).
        lagrangian: penalize rewards with the Lagrange multiplier.
        multiplier: its initial value (a resumed run passes the checkpoint's), tokens/s per J.
    """
    kind = resolve_vec_env(kind, env_config)
    if kind == "gelato":
        return gelato_vec_env(
            env_config, prompt_indices, n_envs, seed, lagrangian=lagrangian, multiplier=multiplier
        )
    thunk = env_factory(env_config, prompt_indices, lagrangian=lagrangian, multiplier=multiplier)
    return make_vec_env(thunk, n_envs, kind, seed)


def make_eval_env(
    env_config: EnvConfig, prompt_indices: Sequence[int], *, like: str, seed: int
) -> Any:
    """One held-out evaluation env, vectorized like the training envs of kind ``like``.

    SB3 copies ``VecNormalize`` statistics to the eval env along parallel wrapper chains
    (``sync_envs_normalization``), so the eval env is wrapped as the training envs are:
    :func:`gelato_vec_env` with ``rng="per_env"`` (N = 1 plays exactly the single env's
    episodes) for ``gelato``, else a one-env ``DummyVecEnv``.
    """
    if resolve_vec_env(like, env_config) == "gelato":
        return gelato_vec_env(env_config, prompt_indices, 1, seed, rng="per_env")
    return make_vec_env(env_factory(env_config, prompt_indices), 1, "dummy", seed)


def make_vec_env(thunk: Callable[[], gym.Env[Any, Any]], n_envs: int, kind: str, seed: int) -> Any:
    """``n_envs`` copies of ``thunk`` in a ``DummyVecEnv``/``SubprocVecEnv``, seeded seed+i."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if kind not in ("dummy", "subproc"):
        raise ValueError(f"make_vec_env builds 'dummy' or 'subproc' VecEnvs, got {kind!r}")
    cls = DummyVecEnv if kind == "dummy" else SubprocVecEnv
    venv = cls([thunk] * n_envs)
    venv.seed(seed)
    return venv


# ------------------------------------------------------------------------------------------
# gelato's vector env under SB3


def gelato_vec_env(
    env_config: EnvConfig,
    prompt_indices: Sequence[int],
    n_envs: int,
    seed: int,
    *,
    lagrangian: bool = False,
    multiplier: float = 0.0,
    rng: str = "batched",
) -> Any:
    """``n_envs`` training envs as one :class:`~gelato_env.vector.GelatoVectorEnv` under SB3.

    The stack of the module docstring; ``rng="per_env"`` makes env i's trajectory the single
    env's seeded ``seed + i`` (bit-identical), ``"batched"`` [D] is faster.
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.vec_infos import VecRoundInfos
    from gelato_env.vector import GelatoVectorEnv, make_sb3_vec_env

    backend = build_backend(env_config, prompt_indices)
    kwargs = {**env_config.to_kwargs(), "backend": backend}
    tap = _StepTap(GelatoVectorEnv(n_envs, rng=rng, autoreset_mode="same_step", **kwargs))
    top: VectorEnv[Any, Any, Any] = VectorLagrangianReward(tap, multiplier) if lagrangian else tap
    # the adapter uses only the VectorEnv API (spaces, metadata, reset, step, close)
    sb3 = make_sb3_vec_env(cast("GelatoVectorEnv", top))
    sb3.seed(seed)
    return VecMonitor(VecRoundInfos(sb3, tap))


def round_values(
    info: dict[str, Any], done: npt.NDArray[np.bool_], keys: Sequence[str]
) -> dict[str, npt.NDArray[Any]]:
    """Each env's value of ``keys`` for the round it just played, arrays of shape ``(N,)``.

    A ``same_step`` vector env reports, for an env that ended and was reset in the step, its
    reset values in ``info`` and the round's in ``info["final_info"]``; this takes the latter.
    """
    if not done.any():
        return {key: info[key] for key in keys}
    final = info["final_info"]
    return {key: np.where(done, final[key], info[key]) for key in keys}


class _StepTap(VectorWrapper):
    """Keeps the last step's env rewards and round values for :class:`VecRoundInfos`."""

    def __init__(self, env: VectorEnv[Any, Any, Any]) -> None:
        from gelato_env.vector import STEP_INFO_KEYS

        super().__init__(env)
        self.keys = STEP_INFO_KEYS
        self.rewards = np.zeros(env.num_envs)
        self.values: dict[str, npt.NDArray[Any]] = {}

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step and keep the rewards and :func:`round_values`."""
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        self.rewards = np.asarray(rewards, dtype=np.float64)
        self.values = round_values(info, terminated | truncated, self.keys)
        return obs, rewards, terminated, truncated, info


class VectorLagrangianReward(VectorWrapper):
    """:class:`LagrangianReward` on arrays: rewards r_k - lambda (E_k - A_k) of every env.

    Args:
        env: a ``same_step`` vector env of gelato envs.
        multiplier: the initial lambda (>= 0), tokens/s per J.
    """

    def __init__(self, env: VectorEnv[Any, Any, Any], multiplier: float = 0.0) -> None:
        super().__init__(env)
        self.multiplier = _checked_multiplier(multiplier)

    def set_multiplier(self, value: float) -> None:
        """Set lambda (>= 0), tokens/s per J."""
        self.multiplier = _checked_multiplier(value)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step and penalize each env's round net energy."""
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        v = round_values(info, terminated | truncated, ("cost", "allowance_j"))
        shaped = lagrangian_reward(
            np.asarray(rewards, dtype=np.float64), v["cost"], v["allowance_j"], self.multiplier
        )
        return obs, shaped, terminated, truncated, info
