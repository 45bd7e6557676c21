"""The natively vectorized replay env (:class:`GelatoVectorEnv`) and its SB3 adapter.

Modules: :mod:`~gelato_env.vector.env` (the env), :mod:`~gelato_env.vector.tables` (its
per-position lookup tables), :mod:`~gelato_env.vector.info` (the step info's keys),
:mod:`~gelato_env.vector.rng` (per-env or batched randomness), :mod:`~gelato_env.vector.sb3`
(stable-baselines3's ``VecEnv``).
"""

from gelato_env.vector.env import AUTORESET_MODES, RNG_MODES, GelatoVectorEnv
from gelato_env.vector.info import RESET_INFO_KEYS, STEP_INFO_KEYS
from gelato_env.vector.sb3 import make_sb3_vec_env

__all__ = [
    "AUTORESET_MODES",
    "RESET_INFO_KEYS",
    "RNG_MODES",
    "STEP_INFO_KEYS",
    "GelatoVectorEnv",
    "make_sb3_vec_env",
]
