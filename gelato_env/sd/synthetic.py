"""SYNTHETIC random-initialised GPT-2 models for unit tests, smoke runs and speed benchmarks.

Their token statistics are meaningless (near-uniform distributions); they only exercise the
machinery offline and fast. Never use them for results: the default path is the trained default
pair (:mod:`gelato_env.sd.default_pair`).
"""

from __future__ import annotations

from typing import Any

from gelato_env.sd.models import ModelPair


def random_gpt2(
    n_layer: int,
    n_embd: int,
    *,
    seed: int,
    vocab_size: int = 64,
    n_positions: int = 512,
    n_head: int = 2,
) -> Any:
    """A seeded random-init ``GPT2LMHeadModel`` in eval mode (bos 0, eos/pad 1)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
        n_head=n_head, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )  # fmt: skip
    return GPT2LMHeadModel(config).eval()


def synthetic_pair(
    draft: tuple[int, int] = (1, 32),
    target: tuple[int, int] = (2, 48),
    *,
    seeds: tuple[int, int] = (1, 2),
    vocab_size: int = 64,
    n_positions: int = 512,
    ids: tuple[str, str] = ("micro-draft", "micro-target"),
    eos_token_id: int | None = 1,
) -> ModelPair:
    """A random-init draft/target pair, ``(n_layer, n_embd)`` each (SYNTHETIC statistics)."""
    shape = {"vocab_size": vocab_size, "n_positions": n_positions}
    return ModelPair(
        random_gpt2(*draft, seed=seeds[0], **shape),
        random_gpt2(*target, seed=seeds[1], **shape),
        None,
        ids[0],
        ids[1],
        eos_token_id,
    )
