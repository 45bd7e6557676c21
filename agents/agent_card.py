"""What a training run leaves for evaluation: the model, its normalization and the agent card.

``scripts/train.py`` writes into its run directory :data:`MODEL_FILE` (the SB3 model),
:data:`VECNORMALIZE_FILE` (the ``VecNormalize`` statistics, when used) and :data:`AGENT_CARD`
(:class:`AgentCard`: algorithm, training env config, reward, prompt split);
:class:`agents.learned.LearnedPolicy` loads the three by path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
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
