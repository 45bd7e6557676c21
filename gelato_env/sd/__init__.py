"""Speculative decoding on real models: the only subpackage that imports torch/transformers.

``round`` and ``exit_rules`` are torch-free (the env and trace replay use them); the engine,
model loading and the default-pair builder live in their own modules and import torch.
"""

from gelato_env.sd.exit_rules import EXIT_RULES, ExitRule, make_exit_rule, realized_length
from gelato_env.sd.round import DraftStats, RoundBackend, RoundResult

__all__ = [
    "EXIT_RULES",
    "DraftStats",
    "ExitRule",
    "RoundBackend",
    "RoundResult",
    "make_exit_rule",
    "realized_length",
]
