"""Fixtures for the SD engine tests: micro random-init models with *sharp* logits (synthetic).

The shared ``micro_pair`` models have near-uniform next-token distributions, so they repeat one
token and rarely agree with a draft. The models here use a larger init scale so greedy outputs
vary, and pair a target with (a) its exact copy (every draft token accepted) and (b) a copy with
perturbed weights (partial acceptance), so every verification path runs.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

EOS = 1


def sharp_gpt2(
    vocab: int, n_layer: int, n_embd: int, seed: int, init: float = 0.3
) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=vocab, n_positions=256, n_embd=n_embd, n_layer=n_layer, n_head=2,
        bos_token_id=0, eos_token_id=EOS, pad_token_id=EOS, initializer_range=init,
    )  # fmt: skip
    return GPT2LMHeadModel(cfg).eval()


def perturbed(model: GPT2LMHeadModel, scale: float, seed: int) -> GPT2LMHeadModel:
    """A copy of ``model`` with Gaussian noise of std ``scale`` added to every weight."""
    twin = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in twin.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * scale)
    return twin.eval()


@pytest.fixture(scope="session")
def sharp_target() -> GPT2LMHeadModel:
    """A 2-layer GPT-2 target with vocab 64 and varied greedy continuations (synthetic)."""
    return sharp_gpt2(64, 2, 48, seed=7)


@pytest.fixture(scope="session")
def copy_pair(sharp_target):  # type: ignore[no-untyped-def]
    """(draft, target) where the draft is an exact copy: every draft token is accepted."""
    return copy.deepcopy(sharp_target), sharp_target


@pytest.fixture(scope="session")
def perturbed_pair(sharp_target):  # type: ignore[no-untyped-def]
    """(draft, target) where the draft is the target with perturbed weights: partial acceptance."""
    return perturbed(sharp_target, 0.02, seed=11), sharp_target


@pytest.fixture(scope="session")
def tiny_vocab_pair():  # type: ignore[no-untyped-def]
    """(draft, target) with vocab 8 for distribution tests (independent random models)."""
    return sharp_gpt2(8, 1, 16, seed=21, init=0.2), sharp_gpt2(8, 1, 16, seed=22, init=0.2)


@pytest.fixture(scope="module")
def one_torch_thread():  # type: ignore[no-untyped-def]
    """Micro models gain nothing from intra-op threads; one thread avoids oversubscription.

    Used by the engine test modules (``pytestmark``), restored after each module.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
