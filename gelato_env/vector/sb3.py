"""stable-baselines3 on the native vector env: :func:`make_sb3_vec_env` (no subprocesses).

SB3 imports torch, which the env layer does not (docs/design.md §1), so the ``VecEnv`` subclass
is defined on first use.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from gymnasium.vector import AutoresetMode

from gelato_env.observation import ObsArray
from gelato_env.vector.info import STEP_INFO_KEYS

if TYPE_CHECKING:
    from gelato_env.vector.env import GelatoVectorEnv

BoolArray = npt.NDArray[np.bool_]


def make_sb3_vec_env(venv: GelatoVectorEnv) -> Any:
    """Wrap a ``same_step`` vector env as a stable-baselines3 ``VecEnv`` (SB3 trains on it as is).

    Step infos are per-env dicts, empty except at an episode's end, where they hold
    ``terminal_observation`` and ``TimeLimit.truncated`` (SB3's conventions) and the last step's
    info values; wrap in ``VecMonitor`` for episode statistics. ``seed(s)`` seeds the next
    ``reset`` like SB3's own VecEnvs (env i with s + i in ``per_env`` mode).

    Raises:
        ValueError: the vector env does not autoreset in the same step.
    """
    if venv.metadata["autoreset_mode"] is not AutoresetMode.SAME_STEP:
        raise ValueError("make_sb3_vec_env needs autoreset_mode='same_step' (SB3's semantics)")
    return _sb3_class()(venv)


class _SB3Adapter:
    """The stable-baselines3 ``VecEnv`` methods over a :class:`GelatoVectorEnv` (no subprocesses).

    Combined with SB3's ``VecEnv`` base by :func:`_sb3_class`, so this module imports no torch.
    """

    num_envs: int
    _seeds: list[int | None]
    reset_infos: list[dict[str, Any]]

    def __init__(self, venv: GelatoVectorEnv) -> None:
        self.venv = venv
        self._actions: Any = None
        super().__init__(  # type: ignore[call-arg]
            venv.num_envs, venv.single_observation_space, venv.single_action_space
        )

    def reset(self) -> ObsArray:
        obs, _ = self.venv.reset(seed=self._seeds[0])
        self._seeds = [None] * self.num_envs
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: npt.NDArray[Any]) -> None:
        self._actions = actions

    def step_wait(
        self,
    ) -> tuple[ObsArray, npt.NDArray[np.float32], BoolArray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs, final_info = info["final_obs"], info["final_info"]
            for i in np.flatnonzero(dones).tolist():
                item = {k: final_info[k][i].item() for k in STEP_INFO_KEYS}
                item["terminal_observation"] = final_obs[i]
                item["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                infos[i] = item
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        value = None if attr_name == "render_mode" else getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[Any], indices: Any = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


@functools.cache
def _sb3_class() -> type[Any]:
    """``GelatoSB3VecEnv``, defined on first use: SB3 imports torch (docs/design.md §1)."""
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    return type("GelatoSB3VecEnv", (_SB3Adapter, VecEnv), {"__module__": __name__})
