"""Shared fixtures. Models here are random-initialised micro models built in-test (no downloads):
their token statistics are synthetic and only exercise the machinery."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MICRO_VOCAB = 64
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as a module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def _micro_gpt2(n_layer: int, n_embd: int, seed: int):  # type: ignore[no-untyped-def]
    from gelato_env.sd.synthetic import random_gpt2

    return random_gpt2(n_layer, n_embd, seed=seed, vocab_size=MICRO_VOCAB, n_positions=256)


def _micro_llama(seed: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=MICRO_VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
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


MICRO_TRACE_PROMPTS = 6
MICRO_TRACE_NEW_TOKENS = 40
MICRO_TRACE_GAMMA_MAX = 8


def micro_prompts(n: int, seed: int = 7) -> list[list[int]]:
    """``n`` random prompts of 4..12 token ids in 2..MICRO_VOCAB-1 (synthetic, no EOS/BOS)."""
    gen = np.random.default_rng(seed)
    return [gen.integers(2, MICRO_VOCAB, size=int(gen.integers(4, 13))).tolist() for _ in range(n)]


@pytest.fixture(scope="session")
def micro_trace(micro_pair, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A greedy ``Trace`` recorded from ``micro_pair`` (synthetic statistics): 6 prompts x 40 new
    tokens, gamma_max 8, EOS id 1; ``micro_trace.path`` is its directory (session tmp dir)."""
    from gelato_env.sd.models import ModelPair
    from gelato_env.traces.prompts import PromptTokens
    from gelato_env.traces.recorder import RecordConfig, record_trace

    draft, target = micro_pair
    pair = ModelPair(draft, target, None, "micro-gpt2-draft", "micro-gpt2-target", eos_token_id=1)
    prompts = [
        PromptTokens(f"micro-{i}", tuple(p))
        for i, p in enumerate(micro_prompts(MICRO_TRACE_PROMPTS))
    ]
    cfg = RecordConfig(
        gamma_max=MICRO_TRACE_GAMMA_MAX,
        max_new_tokens=MICRO_TRACE_NEW_TOKENS,
        batch_positions=16,
        num_threads=1,
    )
    trace, _ = record_trace(
        pair,
        prompts,
        tmp_path_factory.mktemp("micro_trace"),
        cfg,
        prompt_set="micro",
        progress=False,
    )
    return trace
