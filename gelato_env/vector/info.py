"""The keys of a vector step's ``info`` and of its masks (docs/design.md §7).

A step's ``info`` maps each of :data:`STEP_INFO_KEYS` to an ``(N,)`` array (the single env's
keys, less ``entropies``) with a ``_key`` mask, as ``gymnasium.vector.SyncVectorEnv`` builds it;
a reset's, each of :data:`RESET_INFO_KEYS` (:data:`~gelato_env.observation.INFO_KEYS` lists
them all).
"""

from __future__ import annotations

from gelato_env.observation import INFO_KEYS

#: ``info`` keys of a step, as arrays of shape ``(N,)`` (the single env's, less ``entropies``)
STEP_INFO_KEYS: tuple[str, ...] = tuple(k for k in INFO_KEYS if k != "entropies")
#: ``info`` keys of a reset (the single env's ``reset`` info)
RESET_INFO_KEYS = ("queue", "rate_bps", "prompt_index", "budget_used_frac", "n_generated")
#: masks of the step keys a reset does not report, and of the reset keys
STEP_MASKS = tuple(f"_{k}" for k in STEP_INFO_KEYS if k not in RESET_INFO_KEYS)
RESET_MASKS = tuple(f"_{k}" for k in RESET_INFO_KEYS)
