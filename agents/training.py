"""Training glue for learned agents, by concept (``scripts/train.py`` reads top to bottom).

This module only gathers the public names of the modules it was split into, so existing
``from agents.training import ...`` lines keep working:

- :mod:`agents.train_config`: ``AlgoConfig``, ``RewardConfig``, ``TrainConfig``, algorithms.
- :mod:`agents.prompt_split`: the held-out prompt split, ``PromptSubset``, ``subset_trace``.
- :mod:`agents.train_envs`: backends, the Lagrangian reward, the vectorized training envs.
- :mod:`agents.checkpoints`: checkpoint files and the run state a resume needs.
- :mod:`agents.run_dir`: the run directory's config; resume only the same config.
- :mod:`agents.agent_card`: the files a trained agent leaves for evaluation.
"""

from agents.agent_card import AGENT_CARD, MODEL_FILE, VECNORMALIZE_FILE, AgentCard
from agents.checkpoints import (
    Checkpoint,
    RunState,
    checkpoint_paths,
    latest_checkpoint,
    list_checkpoints,
)
from agents.prompt_split import PromptSplit, PromptSubset, split_prompts, subset_trace
from agents.run_dir import (
    ON_CONFIG_CHANGE,
    RESUME_FREE_FIELDS,
    RUN_CONFIG,
    SUMMARY,
    ConfigMismatchError,
    RunRecord,
    claim_run_dir,
    config_differences,
    config_hash,
    flatten_config,
    has_progress,
)
from agents.train_config import (
    ALGORITHMS,
    OFF_POLICY,
    REWARDS,
    VEC_ENVS,
    AlgoConfig,
    RewardConfig,
    TrainConfig,
    algorithm_class,
)
from agents.train_envs import (
    LagrangianReward,
    VectorLagrangianReward,
    build_backend,
    env_factory,
    gelato_vec_env,
    make_eval_env,
    make_training_env,
    make_vec_env,
    resolve_vec_env,
)

__all__ = [
    "AGENT_CARD",
    "ALGORITHMS",
    "MODEL_FILE",
    "OFF_POLICY",
    "ON_CONFIG_CHANGE",
    "RESUME_FREE_FIELDS",
    "REWARDS",
    "RUN_CONFIG",
    "SUMMARY",
    "VECNORMALIZE_FILE",
    "VEC_ENVS",
    "AgentCard",
    "AlgoConfig",
    "Checkpoint",
    "ConfigMismatchError",
    "LagrangianReward",
    "PromptSplit",
    "PromptSubset",
    "RewardConfig",
    "RunRecord",
    "RunState",
    "TrainConfig",
    "VectorLagrangianReward",
    "algorithm_class",
    "build_backend",
    "checkpoint_paths",
    "claim_run_dir",
    "config_differences",
    "config_hash",
    "env_factory",
    "flatten_config",
    "gelato_vec_env",
    "has_progress",
    "latest_checkpoint",
    "list_checkpoints",
    "make_eval_env",
    "make_training_env",
    "make_vec_env",
    "resolve_vec_env",
    "split_prompts",
    "subset_trace",
]
