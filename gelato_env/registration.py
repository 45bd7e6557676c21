"""The gelato environment catalogue: every ``gymnasium.register`` call, in one place.

Importing :mod:`gelato_env` registers:

=============================  ===========================================================
id                             what it is
=============================  ===========================================================
``gelato/DeviceEdgeSD-v0``     replay backend over a recorded trace of real models
                               (``trace_path=``; default: ``default_trace_path()``, built
                               lazily at construction); deterministic given the seed
``gelato/DeviceEdgeSD-Live-v0``  live ``transformers`` models every round (``backend=`` a
                               ``RoundBackend``, or ``model_pair="default"``); modelled clock
                               by default (deterministic); ``clock="measured"`` flags the
                               spec ``nondeterministic``
=============================  ===========================================================

Neither id sets ``max_episode_steps``: an episode is one prompt's generation. For long-term
runs across prompts pass ``horizon=H, max_episode_steps=H`` to ``gymnasium.make`` (or use
:func:`make_env`, which does both from an :class:`~gelato_env.config.EnvConfig`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from gelato_env.config import EnvConfig

ENV_ID = "gelato/DeviceEdgeSD-v0"
LIVE_ENV_ID = "gelato/DeviceEdgeSD-Live-v0"
ENV_IDS: tuple[str, ...] = (ENV_ID, LIVE_ENV_ID)
_ENTRY_POINT = "gelato_env.env:GelatoEnv"


def register_envs() -> None:
    """Register the gelato ids (idempotent: re-registering an id is skipped)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=_ENTRY_POINT, kwargs={"backend": "replay"})
    if LIVE_ENV_ID not in gym.registry:
        gym.register(id=LIVE_ENV_ID, entry_point=_ENTRY_POINT, kwargs={"backend": "live"})


def make_env(config: EnvConfig, **overrides: Any) -> gym.Env[Any, Any]:
    """``gymnasium.make`` the env a config describes, with ``TimeLimit(horizon)`` when set.

    Args:
        config: the env configuration (``backend`` picks the id).
        **overrides: extra ``GelatoEnv`` kwargs (e.g. ``backend=`` a ready ``RoundBackend``).
    """
    env_id = ENV_ID if config.backend == "replay" else LIVE_ENV_ID
    kwargs = config.to_kwargs()
    kwargs.update(overrides)
    return gym.make(env_id, max_episode_steps=config.horizon, **kwargs)


register_envs()
