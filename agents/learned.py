"""A trained stable-baselines3 agent as a :class:`~agents.base.Policy` of the evaluation harness.

``scripts/train.py`` leaves in its run directory the final ``model.zip``, the ``VecNormalize``
statistics ``vecnormalize.pkl`` (when used) and ``agent.json``
(:class:`~agents.agent_card.AgentCard`: algorithm, training env config, prompt split).
:class:`LearnedPolicy` loads them by path, so a trained agent is scored by the same loop, table
and plots as GELATO::

    python scripts/evaluate.py agents=[gelato,static_topp,learned] \
        +agent_overrides.learned.path=runs/<run>

It decides from the observation only (no system model). It shares the analytic agents' harness
hooks: :meth:`env_overrides` asks for the training env's action mode, inner exit rule and payload
protocol, and :meth:`bind` checks the harness env's spaces against the model's before the
shared :meth:`AnalyticPolicy.bind <agents.base.AnalyticPolicy.bind>`. The held-out comparison
with GELATO that ``scripts/train.py`` runs after training is :mod:`agents.comparison`.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from agents.agent_card import AGENT_CARD, MODEL_FILE, VECNORMALIZE_FILE, AgentCard
from agents.base import AnalyticPolicy, EnvOverrides, PolicyState
from agents.train_config import algorithm_class
from gelato_env.config import ACTION_MODES
from gelato_env.system import system_setting

#: env settings that may legitimately differ between training and evaluation; a difference in
#: any other field (system, budget, channel, ...) is evaluated but warned about
_EVAL_ONLY_FIELDS = (
    "backend",
    "trace_path",
    "horizon",
    "prompt_order",
    "reward_mode",
    "max_new_tokens",
)
#: the env settings that name the system: compared as the parameters they resolve to (a
#: redundant override, e.g. the setting's own bandwidth, is the same system)
_SYSTEM_FIELDS = ("system", "system_overrides")


def _system(settings: Mapping[str, Any]) -> Any:
    """The :class:`~gelato_env.system.SystemParams` an env config dict resolves to."""
    return system_setting(settings.get("system", "paper"), **settings.get("system_overrides", {}))


class LearnedPolicy(AnalyticPolicy):
    """A trained SB3 model (PPO, DQN, A2C) loaded from a training run.

    Args:
        path: the run directory, or its ``model.zip`` (``agent.json`` and ``vecnormalize.pkl``
            are read from the same directory). None builds an unloaded policy whose
            :meth:`bind` fails, naming the setting to add (the registry builds every agent
            without parameters).
        deterministic: act greedily (the argmax action) instead of sampling from the policy.

    Raises:
        FileNotFoundError: no model at ``path``.
        ValueError: a corrupt ``agent.json``.
    """

    name: ClassVar[str] = "learned"
    #: a model acts in the action mode it was trained in, ``per_token`` included
    action_modes: ClassVar[tuple[str, ...]] = ACTION_MODES

    def __init__(self, path: str | Path | None = None, deterministic: bool = True) -> None:
        super().__init__()
        self.path = None if path is None else Path(path).expanduser()
        self.deterministic = bool(deterministic)
        self.model: Any = None
        self.card: AgentCard | None = None
        self._vecnormalize: Any = None
        if self.path is not None:
            self._load(self.path)

    def _load(self, path: Path) -> None:
        directory = path if path.is_dir() else path.parent
        model_path = path if path.is_file() else directory / MODEL_FILE
        if not model_path.is_file():
            raise FileNotFoundError(
                f"no trained model at {path} (expected a run directory with {MODEL_FILE} or a "
                f"model .zip)"
            )
        card_path = directory / AGENT_CARD
        if not card_path.is_file():
            raise FileNotFoundError(f"{card_path}: missing agent card next to {model_path}")
        self.card = AgentCard.load(card_path)
        self.model = algorithm_class(self.card.algo).load(model_path, device="cpu")
        vecnorm = directory / VECNORMALIZE_FILE
        if vecnorm.is_file():
            with vecnorm.open("rb") as f:
                self._vecnormalize = pickle.load(f)  # statistics only; no venv needed

    def __deepcopy__(self, memo: dict[int, Any]) -> LearnedPolicy:
        """A copy sharing the loaded model and ``VecNormalize`` statistics (read-only here).

        The harness plays fresh copies of a bound policy (one per seed, or per env of a batch);
        a ``VecNormalize`` loaded without its venv cannot be deep-copied (SB3's attribute lookup
        recurses), and copying the model would only cost memory.
        """
        memo[id(self.model)] = self.model
        memo[id(self._vecnormalize)] = self._vecnormalize
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, copy.deepcopy(value, memo))
        return clone

    def env_overrides(self) -> EnvOverrides:
        """The training env's action mode, exit rule and payload protocol."""
        if self.card is None:
            return EnvOverrides()
        env = self.card.env
        return EnvOverrides(
            protocol=env.get("payload"),
            exit_rule=str(env["exit_rule"]),
            exit_rule_params=dict(env.get("exit_params") or {}),
            action_mode=str(env["action_mode"]),
        )

    def bind(self, env: Any) -> LearnedPolicy:
        """Check the env's spaces match the model's; warn about other setting differences.

        Raises:
            ValueError: no model loaded, or the observation/action spaces differ.
        """
        if self.model is None or self.card is None:
            raise ValueError(
                "the learned agent needs a trained run: set path=<run dir or model.zip> "
                "(scripts/evaluate.py: +agent_overrides.learned.path=...)"
            )
        base = env.unwrapped
        for what, have, want in (
            ("observation", base.observation_space, self.model.observation_space),
            ("action", base.action_space, self.model.action_space),
        ):
            if have.shape != want.shape or getattr(have, "n", None) != getattr(want, "n", None):
                raise ValueError(
                    f"learned agent {self.path}: env {what} space {have} differs from the "
                    f"trained model's {want}"
                )
        trained = self.card.env
        current = base.config.to_dict()
        differ = sorted(
            k
            for k in trained
            if k not in _EVAL_ONLY_FIELDS + _SYSTEM_FIELDS and trained[k] != current.get(k)
        )
        if _system(trained) != _system(current):  # the system the settings resolve to
            differ = sorted([*differ, "system"])
        if differ:
            warnings.warn(
                f"learned agent {self.path} was trained with different env settings {differ}; "
                f"evaluating out of its training distribution",
                stacklevel=2,
            )
        super().bind(env)
        return self

    def predict(
        self,
        observation: npt.NDArray[Any],
        state: PolicyState = None,
        episode_start: npt.NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[npt.NDArray[Any], PolicyState]:
        """The model's action for a raw env observation, shape ``(obs_dim,)`` or ``(n, obs_dim)``.

        The observation is normalized with the training ``VecNormalize`` statistics first.
        ``deterministic`` is combined with the constructor's: either False samples.
        """
        if self.model is None:
            raise ValueError("the learned agent has no model: build it with path=<run dir>")
        obs = np.asarray(observation, dtype=np.float32)
        if self._vecnormalize is not None:
            obs = self._vecnormalize.normalize_obs(obs)
        action, new_state = self.model.predict(
            obs, state=state, episode_start=episode_start,
            deterministic=self.deterministic and deterministic,
        )  # fmt: skip
        return np.asarray(action), new_state
