"""The prefix-cached recorder equals the re-encoding reference on micro pairs (synthetic models).

Tokens, target outputs and greedy match bits must be identical; float statistics equal up to
the rounding of differently shaped forwards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gelato_env.sd.models import pair_from_models
from gelato_env.sd.rollouts import RolloutSpec, rollout_prefix_cached, rollout_reencode
from tests.conftest import _micro_gpt2, _micro_llama, micro_prompts

EXACT = ("target_tokens", "draft_tokens", "topp_size")
CLOSE = ("entropy", "max_prob", "accept_prob")


def _pair(kind: str):  # type: ignore[no-untyped-def]
    if kind == "gpt2":
        return pair_from_models(
            _micro_gpt2(1, 32, seed=1), _micro_gpt2(2, 48, seed=2), eos_token_id=1
        )
    return pair_from_models(_micro_llama(seed=3), _micro_gpt2(2, 48, seed=4), eos_token_id=1)


@pytest.mark.parametrize("kind", ["gpt2", "llama_draft"])
@pytest.mark.parametrize("temperature", [0.0, 0.8])
@pytest.mark.parametrize("batch_positions", [1, 7, 64])
def test_prefix_cached_equals_reencode(kind: str, temperature: float, batch_positions: int) -> None:
    pair = _pair(kind)
    spec = RolloutSpec(8, 30, temperature, 0.9, batch_positions, decode_budget=3)
    n_rejected = 0
    for i, prompt in enumerate(micro_prompts(4)):
        with torch.inference_mode():
            ref, _ = rollout_reencode(
                pair, prompt, spec, generator=torch.Generator().manual_seed(i)
            )
            new, n_bad = rollout_prefix_cached(
                pair, prompt, spec, generator=torch.Generator().manual_seed(i)
            )
        for name in EXACT:
            np.testing.assert_array_equal(new[name], ref[name], err_msg=name)
        for name in CLOSE:
            np.testing.assert_allclose(new[name], ref[name], atol=1e-5, err_msg=name)
        assert n_bad == 0
        n_rejected += int((ref["accept_prob"] < 1.0).sum())
    assert n_rejected > 0  # the comparison covered rejected drafts, not only full matches


def test_greedy_leading_bits_follow_the_target_output() -> None:
    """Leading match bits are d_{t,j} == y_{t+j} until the first mismatch (replay's contract)."""
    pair = _pair("gpt2")
    spec = RolloutSpec(6, 25, 0.0, 0.9, 8)
    with torch.inference_mode():
        cols, _ = rollout_prefix_cached(pair, micro_prompts(1, seed=3)[0], spec)
    y, d, bits = cols["target_tokens"], cols["draft_tokens"], cols["accept_prob"]
    for t in range(len(y)):
        for j in range(d.shape[1]):
            if t + j >= len(y):
                break
            assert bits[t, j] == float(d[t, j] == y[t + j])
            if d[t, j] != y[t + j]:
                break


def test_one_token_prompt_equals_reencode() -> None:
    """The greedy shared-continuation path also starts from a prompt of one token."""
    pair = _pair("llama_draft")
    spec = RolloutSpec(5, 20, 0.0, 0.9, 4, decode_budget=2)
    with torch.inference_mode():
        ref, _ = rollout_reencode(pair, [7], spec)
        new, n_bad = rollout_prefix_cached(pair, [7], spec)
    for name in EXACT:
        np.testing.assert_array_equal(new[name], ref[name], err_msg=name)
    for name in CLOSE:
        np.testing.assert_allclose(new[name], ref[name], atol=1e-5, err_msg=name)
    assert n_bad == 0


@pytest.mark.parametrize("kind", ["gpt2", "llama_draft"])
def test_batch_decoded_rollouts_equal_reencode(kind: str) -> None:
    """y decoded for prompts of different lengths in one left-padded batch gives the same trace."""
    from gelato_env.sd.rollouts import decode_greedy_batch

    pair = _pair(kind)
    spec = RolloutSpec(6, 24, 0.0, 0.9, 16)
    prompts = micro_prompts(5, seed=11)
    assert len({len(p) for p in prompts}) > 1  # padding is exercised
    with torch.inference_mode():
        decoded = decode_greedy_batch(pair, prompts, spec.max_new_tokens)
        for prompt, (y, kv) in zip(prompts, decoded, strict=True):
            ref, _ = rollout_reencode(pair, prompt, spec)
            np.testing.assert_array_equal(y, ref["target_tokens"])
            assert kv[0][0].shape[-2] == len(prompt) + len(y) - 1
            new, n_bad = rollout_prefix_cached(pair, prompt, spec, decoded=(y, kv))
            for name in EXACT:
                np.testing.assert_array_equal(new[name], ref[name], err_msg=name)
            for name in CLOSE:
                np.testing.assert_allclose(new[name], ref[name], atol=1e-5, err_msg=name)
            assert n_bad == 0
