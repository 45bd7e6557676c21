"""Draft/target model pairs: any two ``AutoModelForCausalLM`` sharing a tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelPair:
    """A draft model and a target model that share one vocabulary.

    Attributes:
        draft: the small on-device model (a ``transformers`` causal LM, eval mode).
        target: the large edge model (a ``transformers`` causal LM, eval mode).
        tokenizer: the shared tokenizer, or None for id-only pairs (unit tests).
        draft_id: where the draft came from (hub id or local path), for trace metadata.
        target_id: where the target came from (hub id or local path), for trace metadata.
        eos_token_id: the id that ends a generation, or None.
    """

    draft: Any
    target: Any
    tokenizer: Any
    draft_id: str
    target_id: str
    eos_token_id: int | None
