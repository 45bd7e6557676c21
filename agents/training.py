"""Training glue for learned agents (stable-baselines3): configs, prompt split, envs, checkpoints.

``scripts/train.py`` reads top to bottom and calls into this module; the library never sees a
``DictConfig`` (docs/design.md §1): the script converts its config into the dataclasses below.

Held-out prompts. A trace's prompts are split into a training and a disjoint evaluation set by
:func:`split_prompts`: prompts are ranked by the SHA-256 of their prompt id (the trace header's
``prompt_ids``) and the first ``ceil(eval_fraction * n)`` form the evaluation set. The split
depends only on the ids, so it is the same on every run, machine and seed. Each env sees its set
through :class:`PromptSubset`, a ``RoundBackend`` that renumbers the chosen prompts 0..m-1.

Checkpoints. A checkpoint is a set of files in ``<run dir>/checkpoints`` sharing a step count:
``model_<n>_steps.zip`` (SB3 model, including the timestep count), ``replay_buffer_<n>_steps.pkl``
(off-policy algorithms), ``vecnormalize_<n>_steps.pkl`` (when ``VecNormalize`` is used) and
``state_<n>_steps.json`` (W&B run id and name, Lagrange multiplier, best evaluation return,
last evaluation step), written last: a checkpoint counts only once its state file exists
(:func:`latest_checkpoint`).

Resume. A run directory belongs to one resolved config: the first start stores it in
``run_config.json`` (:class:`RunRecord`, with the trace checksum, the W&B run id and the run
name); a later start compares its own config with it field by field
(:func:`config_differences`) and refuses a different one, naming every differing field
(:class:`ConfigMismatchError`), or, when asked, starts a sibling run directory keyed on the new
config's hash (:func:`claim_run_dir`). Fields in :data:`RESUME_FREE_FIELDS` steer one invocation
(how long, how loud, what to compare afterwards) and may change between starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gelato_env.config import EnvConfig
from gelato_env.registration import make_env
from gelato_env.sd.exit_rules import ExitRule
from gelato_env.sd.round import DraftStats, RoundBackend, RoundResult
from gelato_env.wrappers import EpisodeStatistics

#: algorithm name -> stable-baselines3 class name (imported lazily: SB3 pulls in torch)
ALGORITHMS: dict[str, str] = {"ppo": "PPO", "dqn": "DQN", "a2c": "A2C"}
OFF_POLICY = frozenset({"dqn"})
REWARDS = ("throughput", "dpp", "lagrangian")
VEC_ENVS = ("dummy", "subproc")


def algorithm_class(name: str) -> Any:
    """The SB3 class of algorithm ``name`` (``ppo``, ``dqn``, ``a2c``).

    SAC is not offered: every action mode of the env is discrete (a drafting budget, a threshold
    level, draft/offload), and SAC needs a ``Box`` action space.
    """
    if name not in ALGORITHMS:
        raise ValueError(f"algo must be one of {sorted(ALGORITHMS)}, got {name!r}")
    import stable_baselines3

    return getattr(stable_baselines3, ALGORITHMS[name])


# ------------------------------------------------------------------------------------------
# configs


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
        vec_env: ``dummy`` (one process) or ``subproc`` (one process per env).
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
    vec_env: str = "dummy"
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


# ------------------------------------------------------------------------------------------
# held-out prompts


@dataclass(frozen=True)
class PromptSplit:
    """Disjoint training and evaluation prompt indices of one trace.

    Attributes:
        train: trace prompt indices used for training, ascending.
        eval: trace prompt indices held out for evaluation, ascending.
    """

    train: tuple[int, ...]
    eval: tuple[int, ...]

    def to_dict(self) -> dict[str, list[int]]:
        """A JSON-serializable dict."""
        return {"train": list(self.train), "eval": list(self.eval)}


def split_prompts(prompt_ids: Sequence[str], eval_fraction: float) -> PromptSplit:
    """Split prompts by the SHA-256 of their ids (see the module docstring).

    Args:
        prompt_ids: the trace's prompt ids, in row order (``trace.header.prompt_ids``).
        eval_fraction: share held out, in (0, 1); at least one prompt lands in each set.

    Raises:
        ValueError: fewer than 2 prompts, or ``eval_fraction`` outside (0, 1).

    >>> split_prompts(["a", "b", "c", "d"], 0.25).eval
    (3,)
    """
    n = len(prompt_ids)
    if n < 2:
        raise ValueError(f"a prompt split needs >= 2 prompts, got {n}")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    ranked = sorted(range(n), key=lambda i: hashlib.sha256(prompt_ids[i].encode()).hexdigest())
    n_eval = min(max(math.ceil(eval_fraction * n), 1), n - 1)
    held_out = sorted(ranked[:n_eval])
    return PromptSplit(train=tuple(sorted(ranked[n_eval:])), eval=tuple(held_out))


class PromptSubset:
    """A ``RoundBackend`` serving a subset of another backend's prompts, renumbered 0..m-1.

    Args:
        backend: the full backend.
        indices: the backend's prompt indices to serve, in the new order.
    """

    def __init__(self, backend: RoundBackend, indices: Sequence[int]) -> None:
        if not indices:
            raise ValueError("indices must not be empty")
        bad = [i for i in indices if not 0 <= i < backend.n_prompts]
        if bad:
            raise ValueError(f"prompt indices {bad} outside [0, {backend.n_prompts})")
        self.inner = backend
        self.indices = tuple(int(i) for i in indices)

    @property
    def gamma_max(self) -> int:
        """Largest drafting budget served."""
        return self.inner.gamma_max

    @property
    def n_prompts(self) -> int:
        """Prompts in the subset."""
        return len(self.indices)

    @property
    def max_new_tokens(self) -> int:
        """Output tokens after which a generation ends."""
        return self.inner.max_new_tokens

    @property
    def n_generated(self) -> int:
        """Tokens generated so far in the current generation."""
        return self.inner.n_generated

    @property
    def done(self) -> bool:
        """The current generation has ended."""
        return self.inner.done

    @property
    def output_ids(self) -> list[int]:
        """Tokens generated so far (when the inner backend records them)."""
        return list(getattr(self.inner, "output_ids", []))

    @property
    def trace(self) -> Any:
        """The inner replay backend's whole trace (GELATO fits its acceptance model on it)."""
        return getattr(self.inner, "trace", None)

    def reset(self, prompt_index: int, rng: np.random.Generator) -> None:
        """Start subset prompt ``prompt_index`` (the inner prompt ``indices[prompt_index]``)."""
        self.inner.reset(self.indices[prompt_index], rng)

    def peek(self, budget: int) -> DraftStats:
        """Statistics of the next round's first ``budget`` draft tokens."""
        return self.inner.peek(budget)

    def run_round(self, budget: int, exit_rule: ExitRule) -> RoundResult:
        """Play one round on the inner backend."""
        return self.inner.run_round(budget, exit_rule)


# ------------------------------------------------------------------------------------------
# envs


class LagrangianReward(gym.Wrapper[Any, Any, Any, Any]):
    """Reward r_k - lambda (E_k - A_k): the Lagrangian of the long-term energy constraint.

    The constraint is sum_k (E_k - A_k) <= 0 with E_k = ``info["cost"]`` (J) and A_k =
    ``info["allowance_j"]`` the budget's allowance (``per_round``: A_k = E-bar, so the reward is
    r_k - lambda E_k up to the constant lambda E-bar). lambda is set from outside
    (:class:`agents.callbacks.LagrangeMultiplier` via ``VecEnv.env_method("set_multiplier")``).
    ``info["reward_env"]`` keeps the unpenalized reward.
    """

    def __init__(self, env: gym.Env[Any, Any], multiplier: float = 0.0) -> None:
        super().__init__(env)
        self.multiplier = float(multiplier)

    def set_multiplier(self, value: float) -> None:
        """Set lambda (>= 0), tokens/s per J."""
        if not value >= 0.0:
            raise ValueError(f"multiplier must be >= 0, got {value}")
        self.multiplier = float(value)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and penalize the round's net energy."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["reward_env"] = float(reward)
        net_j = float(info["cost"]) - float(info["allowance_j"])
        return obs, float(reward) - self.multiplier * net_j, terminated, truncated, info


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


def build_backend(env_config: EnvConfig) -> RoundBackend:
    """The full (all prompts) replay backend an env config describes.

    Raises:
        ValueError: a live backend (learned agents train on recorded traces) or no trace path.
    """
    if env_config.backend != "replay":
        raise ValueError(f"training needs env.backend='replay', got {env_config.backend!r}")
    if env_config.trace_path is None:
        raise ValueError("env.trace_path must be set (the script resolves the default trace)")
    from gelato_env.system import system_setting
    from gelato_env.traces.replay import ReplayBackend

    overrides = dict(env_config.system_overrides)
    gamma_max = system_setting(env_config.system, **overrides).gamma_max
    return ReplayBackend(
        env_config.trace_path, gamma_max=gamma_max, max_new_tokens=env_config.max_new_tokens
    )


def make_vec_env(thunk: Callable[[], gym.Env[Any, Any]], n_envs: int, kind: str, seed: int) -> Any:
    """``n_envs`` copies of ``thunk`` in a ``DummyVecEnv``/``SubprocVecEnv``, seeded seed+i."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if kind not in VEC_ENVS:
        raise ValueError(f"vec_env must be one of {list(VEC_ENVS)}, got {kind!r}")
    cls = DummyVecEnv if kind == "dummy" else SubprocVecEnv
    venv = cls([thunk] * n_envs)
    venv.seed(seed)
    return venv


# ------------------------------------------------------------------------------------------
# checkpoints


@dataclass(frozen=True)
class RunState:
    """What a checkpoint needs besides SB3's own files to continue a run.

    Attributes:
        num_timesteps: the model's timestep count at the checkpoint.
        wandb_id: the W&B run id (resumed with ``resume="allow"``), or "" without W&B.
        run_name: the run name ``f"{env}__{agent}__{seed}__{time}"`` chosen at the first start.
        multiplier: the Lagrange multiplier lambda (``lagrangian`` reward), else 0.
        best_mean_reward: best held-out evaluation return so far (-inf before any evaluation).
        segments: ``[start, end]`` timestep counts of each training segment (start, resumes).
        interrupted: whether the segment ended early (signal or step limit).
        last_eval_step: timestep count of the last held-out evaluation at or before
            ``num_timesteps`` (the next one runs at the next multiple of ``eval_freq``); None in
            checkpoints written before it was recorded.
        pending_log: logger values recorded after the last metrics row and before the
            checkpoint (the update's ``train/*`` losses), restored on resume so the next row
            holds them.
    """

    num_timesteps: int
    wandb_id: str
    run_name: str
    multiplier: float = 0.0
    best_mean_reward: float = -math.inf
    segments: tuple[tuple[int, int], ...] = ()
    interrupted: bool = False
    last_eval_step: int | None = None
    pending_log: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """JSON text (``-inf`` is stored as null)."""
        data = asdict(self)
        data["segments"] = [list(s) for s in self.segments]
        data["pending_log"] = dict(self.pending_log)
        if not math.isfinite(self.best_mean_reward):
            data["best_mean_reward"] = None
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunState:
        """Parse :meth:`to_json` output."""
        data = json.loads(text)
        if data.get("best_mean_reward") is None:
            data["best_mean_reward"] = -math.inf
        data["segments"] = tuple(tuple(int(x) for x in s) for s in data.get("segments", ()))
        return cls(**data)


@dataclass(frozen=True)
class Checkpoint:
    """The files of one checkpoint (see the module docstring).

    Attributes:
        num_timesteps: the step count in the file names.
        model: SB3 model zip.
        state: :class:`RunState` JSON.
        replay_buffer: replay buffer pickle, None when not saved.
        vecnormalize: ``VecNormalize`` pickle, None when not saved.
    """

    num_timesteps: int
    model: Path
    state: Path
    replay_buffer: Path | None
    vecnormalize: Path | None

    def run_state(self) -> RunState:
        """The checkpoint's :class:`RunState`."""
        return RunState.from_json(self.state.read_text())


_STATE_RE = re.compile(r"^state_(\d+)_steps\.json$")


def checkpoint_paths(directory: Path, num_timesteps: int) -> Checkpoint:
    """The file names of the checkpoint at ``num_timesteps`` (whether or not they exist)."""
    stem = f"{num_timesteps}_steps"
    return Checkpoint(
        num_timesteps=num_timesteps,
        model=directory / f"model_{stem}.zip",
        state=directory / f"state_{stem}.json",
        replay_buffer=directory / f"replay_buffer_{stem}.pkl",
        vecnormalize=directory / f"vecnormalize_{stem}.pkl",
    )


def list_checkpoints(directory: Path) -> list[Checkpoint]:
    """Complete checkpoints in ``directory`` (state file and model present), oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _STATE_RE.match(path.name)
        if match is None:
            continue
        ckpt = checkpoint_paths(directory, int(match.group(1)))
        if not ckpt.model.is_file():
            continue
        found.append(
            Checkpoint(
                ckpt.num_timesteps, ckpt.model, ckpt.state,
                ckpt.replay_buffer if ckpt.replay_buffer and ckpt.replay_buffer.is_file() else None,
                ckpt.vecnormalize if ckpt.vecnormalize and ckpt.vecnormalize.is_file() else None,
            )
        )  # fmt: skip
    return sorted(found, key=lambda c: c.num_timesteps)


def latest_checkpoint(directory: Path) -> Checkpoint | None:
    """The most recent complete checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------
# the agent card saved next to a trained model


AGENT_CARD = "agent.json"


@dataclass(frozen=True)
class AgentCard:
    """What :class:`agents.learned.LearnedPolicy` needs to rebuild a trained agent's env.

    Attributes:
        algo: algorithm name (``ppo``, ``dqn``, ``a2c``).
        env: the training env config (``EnvConfig.to_dict()``).
        reward: the reward config.
        split: the prompt split (trace prompt indices).
        num_timesteps: training steps of the saved model.
        seed: training seed.
    """

    algo: str
    env: Mapping[str, Any]
    reward: Mapping[str, Any]
    split: Mapping[str, list[int]]
    num_timesteps: int
    seed: int

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(asdict(self), indent=2, default=list)

    @classmethod
    def load(cls, path: Path) -> AgentCard:
        """Read an ``agent.json``.

        Raises:
            ValueError: naming the file, when it is missing a field or not JSON.
        """
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: not a valid agent card: {err}") from err


# ------------------------------------------------------------------------------------------
# the run directory's config: resume only what was started with the same config


RUN_CONFIG = "run_config.json"
SUMMARY = "summary.json"

#: dotted config keys (and key prefixes) a resume may change: they steer one invocation, not
#: what is trained. ``train.total_timesteps`` extends a run (or, lowered, finds it complete);
#: ``compare`` reruns only the post-training comparison.
RESUME_FREE_FIELDS: tuple[str, ...] = (
    "resume",
    "on_config_change",
    "verbose",
    "progress_bar",
    "debug",
    "compare",
    "train.total_timesteps",
    "train.device",
    "wandb.mode",
    "wandb.log_checkpoints",
)

#: ``on_config_change`` values: refuse a changed config, or start a sibling run directory
ON_CONFIG_CHANGE = ("refuse", "new_run")

_ABSENT = "<absent>"


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{dotted.key: leaf}`` (lists are leaves).

    >>> flatten_config({"a": {"b": 1, "c": [2, 3]}, "d": None})
    {'a.b': 1, 'a.c': [2, 3], 'd': None}
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _is_free(key: str, free: Sequence[str]) -> bool:
    return any(key == f or key.startswith(f + ".") for f in free)


def config_differences(
    stored: Mapping[str, Any],
    current: Mapping[str, Any],
    free: Sequence[str] = RESUME_FREE_FIELDS,
) -> list[tuple[str, Any, Any]]:
    """Fields whose values differ between two configs, as ``(dotted key, stored, current)``.

    Fields present in one config only count (their missing value shows as ``<absent>``);
    fields in ``free`` (or below them) are skipped. Values compare after a JSON round trip,
    so tuples equal lists.

    >>> config_differences({"a": {"b": 1}, "seed": 0}, {"a": {"b": 2}, "seed": 0, "resume": 1})
    [('a.b', 1, 2)]
    """
    old = flatten_config(json.loads(json.dumps(stored, default=list)))
    new = flatten_config(json.loads(json.dumps(current, default=list)))
    keys = sorted(k for k in old.keys() | new.keys() if not _is_free(k, free))
    return [
        (k, old.get(k, _ABSENT), new.get(k, _ABSENT))
        for k in keys
        if old.get(k, _ABSENT) != new.get(k, _ABSENT)
    ]


def config_hash(config: Mapping[str, Any], free: Sequence[str] = RESUME_FREE_FIELDS) -> str:
    """8 hex digits of the SHA-256 of the config without its free fields (stable across runs)."""
    flat = flatten_config(json.loads(json.dumps(config, default=list)))
    kept = {k: v for k, v in flat.items() if not _is_free(k, free)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]


class ConfigMismatchError(ValueError):
    """A run directory holds a run started with another config.

    Attributes:
        run_dir: the run directory.
        differences: ``(dotted key, stored value, requested value)`` per differing field.
    """

    def __init__(self, run_dir: Path, differences: Sequence[tuple[str, Any, Any]]) -> None:
        self.run_dir = run_dir
        self.differences = list(differences)
        lines = [f"  {key}: {old!r} (stored) -> {new!r} (now)" for key, old, new in differences]
        super().__init__(
            f"{run_dir} holds a run started with a different config ({run_dir / RUN_CONFIG}); "
            f"{len(lines)} field(s) differ:\n" + "\n".join(lines) + "\n"
            "Resume it with the stored values, choose another run directory (hydra.run.dir=...), "
            "or pass on_config_change=new_run to start a new run in "
            f"{run_dir.name}__cfg<hash of the new config>."
        )


@dataclass(frozen=True)
class RunRecord:
    """What identifies a run directory's run: its config and its names (``run_config.json``).

    Attributes:
        config: the resolved config the run was started with (the script's whole config).
        trace_checksum: checksum of the replayed trace (a rebuilt trace is another run).
        wandb_id: the W&B run id every start of the run logs to.
        run_name: the run name ``f"{env}__{agent}__{seed}__{time}"`` chosen at the first start.
    """

    config: Mapping[str, Any]
    trace_checksum: str
    wandb_id: str
    run_name: str

    @classmethod
    def new(cls, config: Mapping[str, Any], trace_checksum: str, name_prefix: str) -> RunRecord:
        """A record for a new run: a fresh W&B id and ``f"{name_prefix}__{unix time}"``."""
        return cls(
            config=config,
            trace_checksum=trace_checksum,
            wandb_id=uuid.uuid4().hex[:8],
            run_name=f"{name_prefix}__{int(time.time())}",
        )

    def comparable(self) -> dict[str, Any]:
        """The fields a resume compares: the config plus the trace checksum."""
        return {**self.config, "trace_checksum": self.trace_checksum}

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(asdict(self), indent=2, default=list)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """Read a ``run_config.json``.

        Raises:
            ValueError: naming the file, when it is not JSON or misses a field.
        """
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: not a valid run config record: {err}") from err


def has_progress(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds something a start would continue (a checkpoint or a summary)."""
    return latest_checkpoint(run_dir / "checkpoints") is not None or (run_dir / SUMMARY).is_file()


def claim_run_dir(
    run_dir: Path, record: RunRecord, on_config_change: str = "refuse"
) -> tuple[Path, RunRecord, str]:
    """The run directory and record this start uses, checking the stored config.

    * no ``run_config.json``: a new run; the record is written (a directory holding
      checkpoints without one, from an older gelato, is refused: its config is unknown).
    * the stored config equals ``record``'s (free fields aside): the stored record (its W&B id
      and run name) continues.
    * it differs and the directory holds no checkpoint or summary: the record replaces it.
    * it differs otherwise: :class:`ConfigMismatchError`, or with ``on_config_change="new_run"``
      the sibling directory ``<run_dir>__cfg<config_hash>``, checked the same way (so
      rerunning the changed command resumes that one).

    Args:
        run_dir: the requested run directory.
        record: this start's record (config, trace checksum, a fresh W&B id and run name).
        on_config_change: ``refuse`` or ``new_run``.

    Returns:
        ``(run directory, record in force, what happened)`` with the last one of ``new``,
        ``resumed``, ``replaced`` or ``new_run``.

    Raises:
        ValueError: ``on_config_change`` not in :data:`ON_CONFIG_CHANGE`, or a legacy
            directory (checkpoints, no ``run_config.json``).
        ConfigMismatchError: the stored config differs and ``on_config_change="refuse"``.
    """
    if on_config_change not in ON_CONFIG_CHANGE:
        raise ValueError(
            f"on_config_change must be one of {list(ON_CONFIG_CHANGE)}, got {on_config_change!r}"
        )
    path = run_dir / RUN_CONFIG
    if not path.is_file():
        if has_progress(run_dir):
            raise ValueError(
                f"{run_dir} holds checkpoints but no {RUN_CONFIG} (written by an older gelato), "
                "so its config cannot be checked; choose another run directory "
                "(hydra.run.dir=...) or delete it"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, record.to_json())
        return run_dir, record, "new"
    stored = RunRecord.load(path)
    differences = config_differences(stored.comparable(), record.comparable())
    if not differences:
        return run_dir, stored, "resumed"
    if not has_progress(run_dir):
        write_text_atomic(path, record.to_json())
        return run_dir, record, "replaced"
    if on_config_change == "refuse":
        raise ConfigMismatchError(run_dir, differences)
    sibling = run_dir.with_name(f"{run_dir.name}__cfg{config_hash(record.comparable())}")
    new_dir, used, _ = claim_run_dir(sibling, record, "refuse")
    return new_dir, used, "new_run"
