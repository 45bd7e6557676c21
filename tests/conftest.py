"""Shared fixtures. Models here are random-initialised micro models built in-test (no downloads):
their token statistics are synthetic and only exercise the machinery."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MICRO_VOCAB = 64


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def _micro_gpt2(n_layer: int, n_embd: int, seed: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=MICRO_VOCAB, n_positions=256, n_embd=n_embd, n_layer=n_layer, n_head=2,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )
    return GPT2LMHeadModel(cfg).eval()


def _micro_llama(seed: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=MICRO_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def micro_pair():  # type: ignore[no-untyped-def]
    """(draft, target): a 1-layer GPT-2 draft and a 2-layer GPT-2 target, vocab 64 (synthetic)."""
    return _micro_gpt2(1, 32, seed=1), _micro_gpt2(2, 48, seed=2)


@pytest.fixture(scope="session")
def micro_pair_mixed():  # type: ignore[no-untyped-def]
    """(draft, target): a Llama draft and a GPT-2 target sharing vocab 64 (synthetic)."""
    return _micro_llama(seed=3), _micro_gpt2(2, 48, seed=4)
