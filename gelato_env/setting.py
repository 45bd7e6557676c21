"""What an env's configuration fixes before any episode, shared by the single and vector envs.

:func:`env_config` turns ``GelatoEnv`` keyword arguments into an
:class:`~gelato_env.config.EnvConfig` (and a ready backend, if one was passed);
:class:`EnvSetting` derives everything else that does not change over episodes -- the system
parameters, the exit rules, the observation layout and the spaces (docs/design.md §7) -- and
checks a backend against it. :class:`~gelato_env.env.GelatoEnv` and
:class:`~gelato_env.vector.GelatoVectorEnv` both start from here, so they validate and define
their spaces the same way without one building the other.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from gelato_env.config import EnvConfig
from gelato_env.observation import ObservationScales, ObservationSpec
from gelato_env.sd.exit_rules import ExitRule, make_exit_rule, with_threshold
from gelato_env.sd.round import RoundBackend
from gelato_env.system import SystemParams, system_setting


def env_config(
    backend: str | RoundBackend = "replay", **kwargs: Any
) -> tuple[EnvConfig, RoundBackend | None]:
    """``GelatoEnv`` keyword arguments as a config, plus the backend object if one was passed.

    None for ``system_overrides``, ``channel_params``, ``exit_params`` or ``scales`` means the
    default. A backend object makes ``config.backend`` ``"live"`` (the object is used as is).

    Raises:
        TypeError: a backend that is neither a name nor a ``RoundBackend``, or an unknown
            keyword; ValueError: any ``EnvConfig`` check.
    """
    backend_obj = None if isinstance(backend, str) else backend
    if backend_obj is not None and not isinstance(backend_obj, RoundBackend):
        raise TypeError(
            f"backend must be 'replay', 'live' or a RoundBackend, got {type(backend).__name__}"
        )
    for name in ("system_overrides", "channel_params", "exit_params"):
        if kwargs.get(name) is None:
            kwargs[name] = {}
    if kwargs.get("scales") is None:
        kwargs["scales"] = ObservationScales()
    config = EnvConfig(backend=backend if isinstance(backend, str) else "live", **kwargs)
    return config, backend_obj


@dataclass(frozen=True, eq=False)
class EnvSetting:
    """A config's fixed parts (build with :meth:`from_config`; checks run before any I/O).

    Attributes:
        config: the env configuration.
        params: the system setting with the config's overrides.
        exit_rule: the configured exit rule (``budget`` mode).
        threshold_rules: one rule per ``threshold_levels_nats`` level (``budget_threshold``
            mode), else empty.
        observation_spec: the observation layout and scales.
        observation_space: ``Box(0, high, (size,), float32)``.
        action_space: by ``action_mode`` (the env card's Action Space).
        action_help: the valid actions in words, for error messages.
    """

    config: EnvConfig
    params: SystemParams
    exit_rule: ExitRule
    threshold_rules: tuple[ExitRule, ...]
    observation_spec: ObservationSpec
    observation_space: spaces.Space[Any]
    action_space: spaces.Space[Any]
    action_help: str

    @property
    def gamma_max(self) -> int:
        """The largest drafting budget, tokens."""
        return self.params.gamma_max

    @classmethod
    def from_config(cls, config: EnvConfig) -> EnvSetting:
        """Derive the setting; raises ``ValueError`` naming a bad system, rule or level."""
        overrides = dict(config.system_overrides)
        if config.payload is not None:
            overrides["protocol"] = config.payload
        params = system_setting(config.system, **overrides)
        g = params.gamma_max
        exit_rule = make_exit_rule(config.exit_rule, **config.exit_params)
        threshold_rules: tuple[ExitRule, ...] = ()
        if config.action_mode == "budget_threshold":
            threshold_rules = _threshold_rules(config, exit_rule)
        spec = ObservationSpec(
            gamma_max=g, per_token=config.action_mode == "per_token", scales=config.scales
        )
        high = spec.high()
        action_space: spaces.Space[Any]
        if config.action_mode == "budget":
            action_space = spaces.Discrete(g + 1)
            help_ = f"an integer budget in [0, {g}]"
        elif config.action_mode == "budget_threshold":
            n_levels = len(threshold_rules)
            action_space = spaces.MultiDiscrete([g + 1, n_levels])
            help_ = (
                f"a pair [budget, level] of integers, budget in [0, {g}] and level in "
                f"[0, {n_levels - 1}]"
            )
        else:
            action_space = spaces.Discrete(2)
            help_ = "0 (offload now) or 1 (draft one more)"
        help_ += f" (action_mode {config.action_mode!r}: {action_space})"
        return cls(
            config=config,
            params=params,
            exit_rule=exit_rule,
            threshold_rules=threshold_rules,
            observation_spec=spec,
            observation_space=spaces.Box(low=np.zeros_like(high), high=high, dtype=np.float32),
            action_space=action_space,
            action_help=help_,
        )

    def check_backend(self, backend: RoundBackend) -> int:
        """Check ``backend`` serves this setting; returns the generation cap (max_new_tokens).

        Raises:
            ValueError: too small a gamma_max, a max_new_tokens above the backend's, or no
                prompts. Warns when a replayed trace's vocabulary differs from the payload's.
        """
        config, g = self.config, self.gamma_max
        if backend.gamma_max < g:
            raise ValueError(
                f"backend serves gamma_max {backend.gamma_max} but the system setting "
                f"{config.system!r} needs gamma_max {g}; re-record the trace or lower "
                f"system_overrides['gamma_max']"
            )
        self._notice_vocabulary(backend)
        if config.max_new_tokens is not None and config.max_new_tokens > backend.max_new_tokens:
            raise ValueError(
                f"max_new_tokens {config.max_new_tokens} exceeds the backend's "
                f"{backend.max_new_tokens}"
            )
        if backend.n_prompts < 1:
            raise ValueError("backend has no prompts")
        return config.max_new_tokens or backend.max_new_tokens

    def _notice_vocabulary(self, backend: RoundBackend) -> None:
        """Warn when a replayed trace's vocabulary differs from the payload's, unless chosen.

        ``PayloadParams.vocab_size`` sizes the token ids and distributions sent over the link.
        It may deliberately differ from the recorded models' (a small pair priced at the
        paper's Qwen2.5 link), so a mismatch is legal; one the user did not choose (no
        ``system_overrides['vocab_size']``) gets this notice.
        """
        trace = backend.trace
        config = self.config
        if trace is None or "vocab_size" in config.system_overrides:
            return
        recorded, payload = trace.header.vocab_size, self.params.payload.vocab_size
        if recorded != payload:
            warnings.warn(
                f"trace {trace.path} was recorded with a vocabulary of {recorded} tokens, but the "
                f"system setting {config.system!r} sizes link payloads for vocab_size {payload}; "
                f"pass system_overrides={{'vocab_size': {recorded}}} to price the recorded "
                f"models' link, or system_overrides={{'vocab_size': {payload}}} to keep the "
                f"setting's (either silences this notice)",
                UserWarning,
                stacklevel=4,
            )


def _threshold_rules(config: EnvConfig, base: ExitRule) -> tuple[ExitRule, ...]:
    if not any(f.name == "threshold_nats" for f in dataclasses.fields(base)):  # type: ignore[arg-type]
        raise ValueError(
            f"action_mode 'budget_threshold' needs an exit rule with a threshold_nats parameter "
            f"(entropy_threshold, entropy_bucket), got exit_rule {config.exit_rule!r}"
        )
    return tuple(with_threshold(base, level) for level in config.threshold_levels_nats)
