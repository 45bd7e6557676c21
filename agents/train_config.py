"""Training configs of learned agents: the SB3 algorithm, the reward, the run (docs/design.md §7).

``scripts/train.py`` converts its Hydra config into these frozen dataclasses (the library never
sees a ``DictConfig``, docs/design.md §1); each validates its fields before any work starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: algorithm name -> stable-baselines3 class name (imported lazily: SB3 pulls in torch)
ALGORITHMS: dict[str, str] = {"ppo": "PPO", "dqn": "DQN", "a2c": "A2C"}
OFF_POLICY = frozenset({"dqn"})
REWARDS = ("throughput", "dpp", "lagrangian")
#: how ``scripts/train.py`` vectorizes its training envs (:mod:`agents.train_envs`):
#: ``gelato`` is :class:`gelato_env.vector.GelatoVectorEnv` through its SB3 adapter (replay
#: backend only), ``dummy``/``subproc`` SB3's ``DummyVecEnv``/``SubprocVecEnv`` of single envs,
#: ``auto`` the first one the env config allows (``gelato``, else ``dummy``)
VEC_ENVS = ("auto", "gelato", "dummy", "subproc")


def algorithm_class(name: str) -> Any:
    """The SB3 class of algorithm ``name`` (``ppo``, ``dqn``, ``a2c``).

    SAC is not offered: every action mode of the env is discrete (a drafting budget, a threshold
    level, draft/offload), and SAC needs a ``Box`` action space.
    """
    if name not in ALGORITHMS:
        raise ValueError(f"algo must be one of {sorted(ALGORITHMS)}, got {name!r}")
    import stable_baselines3

    return getattr(stable_baselines3, ALGORITHMS[name])


@dataclass(frozen=True)
class AlgoConfig:
    """An SB3 algorithm and its hyperparameters.

    Attributes:
        name: ``ppo``, ``dqn`` or ``a2c``.
        policy: SB3 policy name (``MlpPolicy``).
        kwargs: constructor keyword arguments (``learning_rate``, ``n_steps``, ...);
            ``policy_kwargs.net_arch`` etc. pass through unchanged.
    """

    name: str
    policy: str = "MlpPolicy"
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in ALGORITHMS:
            raise ValueError(f"algo.name must be one of {sorted(ALGORITHMS)}, got {self.name!r}")
        object.__setattr__(self, "kwargs", dict(self.kwargs))


@dataclass(frozen=True)
class RewardConfig:
    """The reward a learned agent maximizes (docs/design.md §7).

    Attributes:
        name: ``throughput`` (N_k / T_k, with Q in the observation), ``dpp`` (V N_k / T_k -
            Q E_k) or ``lagrangian`` (N_k / T_k - lambda (E_k - A_k), with an adaptive lambda).
        lambda_init: initial Lagrange multiplier lambda, tokens/s per J (``lagrangian``).
        lambda_lr: step size eta of lambda <- [lambda + eta (mean(E_k - A_k))]^+, tokens/s per
            J^2 (``lagrangian``).
    """

    name: str = "throughput"
    lambda_init: float = 0.0
    lambda_lr: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in REWARDS:
            raise ValueError(f"reward.name must be one of {list(REWARDS)}, got {self.name!r}")
        if not (math.isfinite(self.lambda_init) and self.lambda_init >= 0.0):
            raise ValueError(f"lambda_init must be a finite number >= 0, got {self.lambda_init}")
        if not (math.isfinite(self.lambda_lr) and self.lambda_lr > 0.0):
            raise ValueError(f"lambda_lr must be a finite number > 0, got {self.lambda_lr}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything but the algorithm, env and reward.

    Attributes:
        total_timesteps: env steps to train for (summed over the vectorized envs).
        n_envs: parallel envs.
        vec_env: how the training envs are vectorized (:data:`VEC_ENVS`): ``auto`` [D] picks
            ``gelato`` (gelato's numpy vector env, one process) when the env config allows it
            (replay backend, a round per step), else ``dummy``; ``subproc`` runs one process per
            env.
        normalize_obs: wrap in ``VecNormalize`` with observation normalization.
        normalize_reward: ``VecNormalize`` return normalization.
        eval_fraction: share of the trace's prompts held out for evaluation, in (0, 1).
        eval_freq: evaluate every this many env steps (summed over envs); 0 disables.
        n_eval_episodes: episodes per evaluation.
        checkpoint_freq: checkpoint every this many env steps (summed over envs).
        keep_checkpoints: most recent checkpoints kept on disk (>= 1).
        seed: seed of the model, the env RNGs and the prompt draws.
        device: torch device of the model (``cpu``: MLP policies are faster on CPU).
    """

    total_timesteps: int
    n_envs: int = 4
    vec_env: str = "auto"
    normalize_obs: bool = False
    normalize_reward: bool = True
    eval_fraction: float = 0.2
    eval_freq: int = 10_000
    n_eval_episodes: int = 10
    checkpoint_freq: int = 10_000
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "n_envs", "n_eval_episodes", "checkpoint_freq",
                     "keep_checkpoints"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.eval_freq, int) or self.eval_freq < 0:
            raise ValueError(f"eval_freq must be an int >= 0, got {self.eval_freq!r}")
        if self.vec_env not in VEC_ENVS:
            raise ValueError(f"vec_env must be one of {list(VEC_ENVS)}, got {self.vec_env!r}")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")

    @property
    def vec_normalize(self) -> bool:
        """Whether the envs are wrapped in ``VecNormalize``."""
        return self.normalize_obs or self.normalize_reward
