"""SYNTHETIC random-initialised GPT-2 models for unit tests, smoke runs and speed benchmarks.

Their token statistics are meaningless (near-uniform distributions); they only exercise the
machinery offline and fast. Never use them for results: the default path is the real pair
(:mod:`gelato_env.sd.qwen_pair`) through its shipped trace.

At GPT-2's own initialisation scale (``initializer_range`` 0.02) a tiny random model mostly
echoes its input through the tied embeddings, so two of them agree on almost every greedy token
(a smoke recording accepted 100 % of drafts, and the alpha(H) fit had R^2 nan).
:func:`synthetic_pair` initialises at :data:`SYNTHETIC_INIT_RANGE` instead, where draft and target
disagree often enough that recordings exercise rejection (measured with ``scripts/
record_traces.py pair.kind=micro_synthetic``, greedy, no early exit: 1.25 tokens per round at
gamma = 8 on 2 prompts x 8 tokens, 2.04 at gamma = 3 on 4 prompts x 128 tokens).
"""

from __future__ import annotations

from typing import Any

from gelato_env.sd.models import ModelPair

#: weight-init std of :func:`synthetic_pair`'s models (GPT-2's is 0.02): draft and target then
#: disagree on some greedy tokens, so smoke recordings see rejections [D]
SYNTHETIC_INIT_RANGE = 0.05


def random_gpt2(
    n_layer: int,
    n_embd: int,
    *,
    seed: int,
    vocab_size: int = 64,
    n_positions: int = 512,
    n_head: int = 2,
    initializer_range: float = 0.02,
) -> Any:
    """A seeded random-init ``GPT2LMHeadModel`` in eval mode (bos 0, eos/pad 1).

    ``initializer_range`` is the std of the weight init (GPT-2's default 0.02).
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
        n_head=n_head, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        initializer_range=initializer_range,
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
    initializer_range: float | None = None,
) -> ModelPair:
    """A random-init draft/target pair, ``(n_layer, n_embd)`` each (SYNTHETIC statistics).

    ``initializer_range`` defaults to :data:`SYNTHETIC_INIT_RANGE`, where the two models reject
    some of each other's drafts (module docstring).
    """
    init = SYNTHETIC_INIT_RANGE if initializer_range is None else initializer_range
    shape: dict[str, Any] = {"vocab_size": vocab_size, "n_positions": n_positions}
    shape["initializer_range"] = init
    return ModelPair(
        random_gpt2(*draft, seed=seeds[0], **shape),
        random_gpt2(*target, seed=seeds[1], **shape),
        None,
        ids[0],
        ids[1],
        eos_token_id,
    )
