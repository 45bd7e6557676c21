"""The gelato environment catalogue: every ``gymnasium.register`` call, in one place.

Importing :mod:`gelato_env` registers:

=============================  ===========================================================
id                             what it is
=============================  ===========================================================
``gelato/DeviceEdgeSD-v0``     replay backend over a recorded trace of real models
                               (``trace_path=``; default: the trace shipped in the
                               package); deterministic given the seed
``gelato/DeviceEdgeSD-Live-v0``  live ``transformers`` models every round (``backend=`` a
                               ``RoundBackend``, or ``model_pair="default"``); modelled clock
                               by default (deterministic); ``clock="measured"`` flags the
                               spec ``nondeterministic``
=============================  ===========================================================

``gelato/DeviceEdgeSD-v0`` has a ``vector_entry_point`` (:func:`create_vector_env`):
``gymnasium.make_vec(ENV_ID, num_envs=N)`` builds the native
:class:`~gelato_env.vector.GelatoVectorEnv` (autoreset ``AutoresetMode.SAME_STEP`` unless
``autoreset_mode="next_step"`` is passed; ``metadata["autoreset_mode"]`` says which), and
``vectorization_mode="sync"`` / ``"async"`` the Gymnasium wrappers of single envs.

Episode limits. Without ``horizon`` an episode is one prompt's generation. ``horizon=H``
(episodes across prompts) makes the entry point :func:`create_env` wrap the env in
``TimeLimit(H)``, so ``gymnasium.make(id, horizon=H)`` truncates after H steps and reports
``env.spec.max_episode_steps == H``, as :class:`~gelato_env.vector.GelatoVectorEnv` truncates.
(Passing ``max_episode_steps=H`` as well adds a second, equal limit: harmless, not needed.)

Subprocess workers. A worker process that never imported :mod:`gelato_env` cannot find the
ids. Two ways work with ``SubprocVecEnv`` / ``AsyncVectorEnv``:

* the module-qualified id ``"gelato_env:gelato/DeviceEdgeSD-v0"`` (gymnasium imports the module
  before the lookup; any start method);
* the plain id under the ``forkserver`` start method (SB3's default on Linux and macOS):
  importing :mod:`gelato_env` adds it to the fork server's preload list, so workers forked
  from a server started afterwards hold the registrations.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import gymnasium as gym

from gelato_env.config import EnvConfig

ENV_ID = "gelato/DeviceEdgeSD-v0"
LIVE_ENV_ID = "gelato/DeviceEdgeSD-Live-v0"
ENV_IDS: tuple[str, ...] = (ENV_ID, LIVE_ENV_ID)
_ENTRY_POINT = "gelato_env.registration:create_env"
_VECTOR_ENTRY_POINT = "gelato_env.registration:create_vector_env"


def create_env(**kwargs: Any) -> gym.Env[Any, Any]:
    """The ids' entry point: ``GelatoEnv(**kwargs)``, in ``TimeLimit(horizon)`` when set.

    Args:
        **kwargs: :class:`~gelato_env.env.GelatoEnv` keyword arguments.
    """
    from gelato_env.env import GelatoEnv

    env = GelatoEnv(**kwargs)
    horizon = env.config.horizon
    if horizon is None:
        return env
    return gym.wrappers.TimeLimit(env, max_episode_steps=horizon)


def create_vector_env(num_envs: int, **kwargs: Any) -> gym.vector.VectorEnv[Any, Any, Any]:
    """The replay id's vector entry point: ``GelatoVectorEnv(num_envs, **kwargs)``.

    Args:
        num_envs: number of envs.
        **kwargs: ``GelatoEnv`` keyword arguments, plus the vector env's ``rng`` and
            ``autoreset_mode``.
    """
    from gelato_env.vector import GelatoVectorEnv

    return GelatoVectorEnv(num_envs, **kwargs)


def register_envs() -> None:
    """Register the gelato ids (idempotent: re-registering an id is skipped)."""
    if ENV_ID not in gym.registry:
        gym.register(
            id=ENV_ID,
            entry_point=_ENTRY_POINT,
            vector_entry_point=_VECTOR_ENTRY_POINT,
            kwargs={"backend": "replay"},
        )
    if LIVE_ENV_ID not in gym.registry:
        gym.register(id=LIVE_ENV_ID, entry_point=_ENTRY_POINT, kwargs={"backend": "live"})


def preload_in_forkserver(module: str = "gelato_env") -> None:
    """Add ``module`` to the ``forkserver`` preload list (no-op where forkserver is missing).

    Takes effect for fork servers started afterwards; workers forked from one then hold the
    module, and with it the registered ids.
    """
    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:  # Windows: no fork server
        return
    from multiprocessing import forkserver

    current = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
    if module not in current:
        context.set_forkserver_preload([*current, module])


def make_env(config: EnvConfig, **overrides: Any) -> gym.Env[Any, Any]:
    """``gymnasium.make`` the env a config describes (``TimeLimit(horizon)`` when set).

    Args:
        config: the env configuration (``backend`` picks the id).
        **overrides: extra ``GelatoEnv`` kwargs (e.g. ``backend=`` a ready ``RoundBackend``).
    """
    env_id = ENV_ID if config.backend == "replay" else LIVE_ENV_ID
    kwargs = config.to_kwargs()
    kwargs.update(overrides)
    return gym.make(env_id, **kwargs)


register_envs()
preload_in_forkserver()
