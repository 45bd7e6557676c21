"""The environment's configuration schema: one frozen dataclass mirroring ``GelatoEnv``'s kwargs.

Hydra scripts compose ``conf/env/*.yaml`` (key names checked against
:data:`gelato_env.conf.schema.EnvSchema`, derived from this class) into a ``DictConfig``,
convert it with :meth:`EnvConfig.from_dict` (the library never sees a ``DictConfig``,
docs/design.md §1) and build the env with ``GelatoEnv.from_config`` or
:func:`gelato_env.registration.make_env`.
Validation here checks names and ranges before any model or trace is loaded; names that live in
other packages (system settings, channel processes, exit rules) are checked when the env is built.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from gelato_env.observation import ObservationScales

BACKENDS = ("replay", "live")
CLOCKS = ("modelled", "measured")
BUDGET_MODES = ("per_round", "per_token", "per_second")
ACTION_MODES = ("budget", "budget_threshold", "per_token")
REWARD_MODES = ("throughput", "dpp", "lagrangian")
PROMPT_ORDERS = ("random", "sequential")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_number(name: str, value: object, *, low: float, strict: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(
            f"{name} must be a finite number {'>' if strict else '>='} {low}, got {value}"
        )


def _check_positive_int(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


@dataclass(frozen=True)
class EnvConfig:
    """Every ``GelatoEnv`` argument, validated (the env card's Arguments section explains each).

    Attributes:
        backend: ``replay`` (recorded trace; fast, deterministic) or ``live`` (real models).
        trace_path: replay trace file; None uses the shipped default trace.
        model_pair: live backend's model pair name (``default``: the shipped trace's Qwen pair).
        clock: ``modelled`` (profile timings, deterministic) or ``measured`` (live wall-clock times
            x profile powers, nondeterministic; live backend only).
        system: named system setting (device/edge profiles, radio, link, payload, gamma_max).
        system_overrides: field overrides passed to ``system_setting(system, **overrides)``.
        channel: channel process name (``rayleigh``, ``gauss_markov``, ...).
        channel_params: keyword parameters of the channel process.
        payload: payload protocol (``topp``, ``full``, ``dssd``); None keeps the setting's.
        budget_mode: how the energy allowance accrues (docs/design.md §5).
        budget_value: the allowance (> 0): J per round, J per token or W, by ``budget_mode``;
            ``math.inf`` means unconstrained.
        v: drift-plus-penalty weight V of reward mode ``dpp`` (reward units per tokens/s).
        action_mode: ``budget``, ``budget_threshold`` or ``per_token``.
        threshold_levels_nats: entropy thresholds H_th selectable in ``budget_threshold`` mode.
        reward_mode: ``throughput``, ``dpp`` or ``lagrangian``.
        exit_rule: early-exit rule run inside ``step`` (``budget`` mode; ``budget_threshold``
            overrides its ``threshold_nats``).
        exit_params: keyword parameters of the exit rule.
        max_new_tokens: tokens per prompt; None uses the backend's (must not exceed it).
        horizon: rounds per episode; when set, episodes span prompts and end by ``TimeLimit``.
        prompt_order: ``random`` (a fixed permutation) or ``sequential``, each a pass without
            replacement that ``reset(seed=s)`` starts at position s
            (:mod:`gelato_env.prompt_order`).
        ema_decay: beta of the entropy / max-prob EMAs, in [0, 1).
        scales: observation normalization scales.
    """

    backend: str = "replay"
    trace_path: str | None = None
    model_pair: str = "default"
    clock: str = "modelled"
    system: str = "paper"
    system_overrides: Mapping[str, Any] = field(default_factory=dict)
    channel: str = "rayleigh"
    channel_params: Mapping[str, Any] = field(default_factory=dict)
    payload: str | None = None
    budget_mode: str = "per_round"
    budget_value: float = 0.2  # J per round [D]: about 4 draft tokens at 5 W x 25 ms + radio
    v: float = 1.0
    action_mode: str = "budget"
    threshold_levels_nats: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
    reward_mode: str = "throughput"
    exit_rule: str = "entropy_bucket"
    exit_params: Mapping[str, float] = field(default_factory=dict)
    max_new_tokens: int | None = None
    horizon: int | None = None
    prompt_order: str = "random"
    ema_decay: float = 0.8
    scales: ObservationScales = field(default_factory=ObservationScales)

    def __post_init__(self) -> None:
        _check_choice("backend", self.backend, BACKENDS)
        if self.trace_path is not None and not isinstance(self.trace_path, (str, os.PathLike)):
            raise TypeError(
                f"trace_path must be a path (str or os.PathLike) or None, got "
                f"{type(self.trace_path).__name__}"
            )
        _check_choice("clock", self.clock, CLOCKS)
        if self.clock == "measured" and self.backend != "live":
            raise ValueError(f"clock='measured' needs backend='live', got {self.backend!r}")
        _check_choice("budget_mode", self.budget_mode, BUDGET_MODES)
        if self.budget_value != math.inf:  # inf: unconstrained, the queue stays at 0
            _check_number("budget_value", self.budget_value, low=0.0, strict=True)
        _check_number("v", self.v, low=0.0)
        _check_choice("action_mode", self.action_mode, ACTION_MODES)
        _check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        _check_choice("prompt_order", self.prompt_order, PROMPT_ORDERS)
        _check_number("ema_decay", self.ema_decay, low=0.0)
        if self.ema_decay >= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        levels = self.threshold_levels_nats
        if isinstance(levels, (str, bytes, Mapping)) or not isinstance(levels, Iterable):
            raise TypeError(
                f"threshold_levels_nats must be a sequence of numbers (nats), got {levels!r}"
            )
        levels = tuple(levels)
        if not levels:
            raise ValueError("threshold_levels_nats must not be empty")
        for i, level in enumerate(levels):
            _check_number(f"threshold_levels_nats[{i}]", level, low=0.0)
        object.__setattr__(self, "threshold_levels_nats", tuple(float(x) for x in levels))
        _check_positive_int("max_new_tokens", self.max_new_tokens, optional=True)
        _check_positive_int("horizon", self.horizon, optional=True)
        for name in ("system_overrides", "channel_params", "exit_params"):
            if not isinstance(getattr(self, name), Mapping):
                raise TypeError(
                    f"{name} must be a mapping, got {type(getattr(self, name)).__name__}"
                )
            object.__setattr__(self, name, dict(getattr(self, name)))
        if isinstance(self.scales, Mapping):
            object.__setattr__(self, "scales", ObservationScales(**self.scales))
        if not isinstance(self.scales, ObservationScales):
            raise TypeError(f"scales must be ObservationScales, got {type(self.scales).__name__}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EnvConfig:
        """Build from a plain mapping (e.g. ``OmegaConf.to_container(cfg.env)``).

        Raises:
            ValueError: a key that is not an ``EnvConfig`` field.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown env config keys {unknown}; known: {sorted(known)}")
        return cls(**values)  # __post_init__ checks and converts (a YAML list -> tuple)

    def to_kwargs(self) -> dict[str, Any]:
        """The ``GelatoEnv`` / ``gymnasium.make`` keyword arguments this config stands for."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["scales"] = self.scales
        return out

    def to_dict(self) -> dict[str, Any]:
        """A plain, loggable dict (W&B config)."""
        out = self.to_kwargs()
        out["scales"] = asdict(self.scales)
        out["threshold_levels_nats"] = list(self.threshold_levels_nats)
        return out
