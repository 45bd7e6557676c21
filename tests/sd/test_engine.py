from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from gelato_env.sd.engine import LiveBackend, SpeculativeDecoder
from gelato_env.sd.exit_rules import (
    EXIT_RULES,
    EntropyBucket,
    EntropyThreshold,
    NoExit,
    realized_length,
)
from gelato_env.sd.models import pair_from_models
from gelato_env.sd.round import RoundBackend

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GAMMA_MAX = 5
MAX_NEW = 24
PROMPTS = ([5, 6, 7, 8], [9, 3], [12, 40, 2, 8, 33, 17])
# default-constructed rules plus tuned ones that stop mid-round on these models' entropies
RULES = [cls() for cls in EXIT_RULES.values()] + [
    EntropyThreshold(2.6),
    EntropyBucket(threshold_nats=2.3, bucket_nats=0.5),
]


def reference(target, prompt: list[int], max_new: int, eos: int | None) -> list[int]:  # type: ignore[no-untyped-def]
    ids = torch.tensor([prompt])
    out = target.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
        eos_token_id=eos, pad_token_id=eos if eos is not None else 0,
    )  # fmt: skip
    return out[0, len(prompt) :].tolist()


def run_all(dec: SpeculativeDecoder, prompt: list[int], budget: int, rule) -> list:  # type: ignore[no-untyped-def]
    dec.start(prompt)
    results = []
    while not dec.done:
        results.append(dec.run_round(budget, rule))
    return results


PAIRS = ["micro_pair", "micro_pair_mixed", "copy_pair", "perturbed_pair"]


@pytest.mark.parametrize("pair_name", PAIRS)
@pytest.mark.parametrize("budget", [0, 1, 3, GAMMA_MAX])
def test_greedy_output_equals_target_greedy(request, pair_name: str, budget: int) -> None:
    draft, target = request.getfixturevalue(pair_name)
    dec = SpeculativeDecoder(
        draft, target, gamma_max=GAMMA_MAX, max_new_tokens=MAX_NEW, eos_token_id=1
    )
    for prompt in PROMPTS:
        expected = reference(target, prompt, MAX_NEW, 1)
        for rule in RULES:
            results = run_all(dec, prompt, budget, rule)
            assert dec.output_ids == expected, (rule, prompt)
            tokens = np.concatenate([r.tokens for r in results]).tolist()
            assert tokens == expected
            for r in results:
                assert r.n_drafted == realized_length(rule, r.entropy, r.max_prob, r.n_drafted)
                assert r.n_drafted <= budget
                assert r.n_tokens <= r.n_accepted + 1
                leading = int(np.cumprod(r.accept_prob).sum())  # greedy: accepted = leading matches
                assert r.n_accepted == leading or r.tokens[-1] == 1


def test_acceptance_paths_are_exercised(copy_pair, perturbed_pair) -> None:  # type: ignore[no-untyped-def]
    full = SpeculativeDecoder(*copy_pair, gamma_max=4, max_new_tokens=MAX_NEW)
    rounds = run_all(full, PROMPTS[0], 4, NoExit())
    assert all(r.n_accepted == r.n_drafted for r in rounds)
    assert all(r.accept_prob.tolist() == [1.0] * r.n_drafted for r in rounds)
    assert [r.n_tokens for r in rounds] == [5, 5, 5, 5, 4]  # last round capped at remaining
    partial = SpeculativeDecoder(*perturbed_pair, gamma_max=4, max_new_tokens=MAX_NEW)
    accepted = [r.n_accepted for p in PROMPTS for r in run_all(partial, p, 4, NoExit())]
    assert min(accepted) == 0
    assert any(0 < a < 4 for a in accepted)
    assert max(accepted) == 4


def test_eos_inside_accepted_drafts_ends_round(copy_pair) -> None:  # type: ignore[no-untyped-def]
    draft, target = copy_pair
    plain = reference(target, PROMPTS[0], MAX_NEW, None)
    eos = plain[6]  # a token the greedy output emits at position 7: call it EOS
    dec = SpeculativeDecoder(draft, target, gamma_max=4, max_new_tokens=MAX_NEW, eos_token_id=eos)
    rounds = run_all(dec, PROMPTS[0], 4, NoExit())
    expected = reference(target, PROMPTS[0], MAX_NEW, eos)
    assert dec.output_ids == expected
    assert expected[-1] == eos
    last = rounds[-1]
    assert last.finished
    assert last.tokens[-1] == eos
    assert last.n_tokens == last.n_accepted  # EOS was an accepted draft: no bonus token
    assert last.n_accepted < last.n_drafted
    assert not any(r.finished for r in rounds[:-1])


def test_round_never_exceeds_remaining(copy_pair) -> None:  # type: ignore[no-untyped-def]
    dec = SpeculativeDecoder(*copy_pair, gamma_max=GAMMA_MAX, max_new_tokens=3)
    dec.start(PROMPTS[1])
    result = dec.run_round(GAMMA_MAX, NoExit())
    assert result.n_drafted == 2
    assert result.n_tokens == 3
    assert result.finished
    assert dec.done
    assert dec.n_generated == 3


def test_kv_cache_after_rejection_matches_fresh_forward(perturbed_pair) -> None:  # type: ignore[no-untyped-def]
    dec = SpeculativeDecoder(*perturbed_pair, gamma_max=4, max_new_tokens=40)
    dec.start(PROMPTS[2])
    n_rejected = 0
    while not dec.done and n_rejected < 3:
        result = dec.run_round(4, NoExit())
        if not result.rejected:
            continue
        n_rejected += 1
        context = PROMPTS[2] + dec.output_ids
        for lm in (dec._draft, dec._target):
            saved = copy.deepcopy(lm.cache)
            n_cached = lm.n_cached
            assert 0 < n_cached < len(context)
            pending = torch.tensor([context[n_cached:]])
            with torch.inference_mode():
                cached = lm.forward(pending, pending.shape[1])
                fresh = lm.model(input_ids=torch.tensor([context])).logits[0, n_cached:]
            torch.testing.assert_close(cached, fresh, atol=1e-5, rtol=1e-4)
            lm.cache, lm.n_cached = saved, n_cached
    assert n_rejected == 3


class ForwardLog:
    """Records the input ids of every forward call of a module."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.inputs: list[list[int]] = []
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs) -> None:  # type: ignore[no-untyped-def]
        self.inputs.append(kwargs["input_ids"][0].tolist())


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_peek_then_round_proposes_peeked_tokens(perturbed_pair, temperature: float) -> None:  # type: ignore[no-untyped-def]
    draft, target = perturbed_pair
    dec = SpeculativeDecoder(draft, target, gamma_max=6, temperature=temperature, max_new_tokens=30)
    dec.start(PROMPTS[0], torch.Generator().manual_seed(3))
    dec.run_round(2, NoExit())  # get past the prompt
    draft_log, target_log = ForwardLog(draft), ForwardLog(target)
    try:
        stats3 = dec.peek(3)
        stats5 = dec.peek(5)  # extends the same proposal
        assert len(draft_log.inputs) == 5
        np.testing.assert_array_equal(stats5.entropy[:3], stats3.entropy)
        result = dec.run_round(4, NoExit())
        assert len(draft_log.inputs) == 5  # no new draft forward: the proposal is reused
        drafted = [ids[-1] for ids in draft_log.inputs[1:5]]  # d_1..d_4 as fed back to the draft
        assert target_log.inputs[-1][-4:] == drafted
        np.testing.assert_array_equal(result.entropy, stats5.entropy[:4])
        np.testing.assert_array_equal(result.max_prob, stats5.max_prob[:4])
        np.testing.assert_array_equal(result.topp_size, stats5.topp_size[:4])
        assert dec.peek(0).entropy.shape == (0,)
    finally:
        draft_log.handle.remove()
        target_log.handle.remove()


def test_round_stats_are_consistent(perturbed_pair) -> None:  # type: ignore[no-untyped-def]
    dec = SpeculativeDecoder(*perturbed_pair, gamma_max=4, max_new_tokens=20, p_top=0.5)
    for r in run_all(dec, PROMPTS[0], 4, NoExit()):
        assert r.entropy.dtype == np.float64
        assert np.all((r.entropy >= 0) & (r.entropy <= math.log(64) + 1e-6))
        assert np.all((r.max_prob > 0) & (r.max_prob <= 1))
        assert np.all((r.topp_size >= 1) & (r.topp_size <= 64))
        assert r.draft_time_s >= 0
        assert r.verify_time_s > 0
    wide = SpeculativeDecoder(*perturbed_pair, gamma_max=4, max_new_tokens=20, p_top=1.0)
    rounds = run_all(wide, PROMPTS[0], 4, NoExit())
    assert all(np.all(r.topp_size >= 40) for r in rounds)  # p_top=1 needs (nearly) every token


def exact_first_two(target, prompt: list[int], temperature: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Exact target law of the first two sampled tokens, shape (V, V)."""
    with torch.inference_mode():
        p1 = torch.softmax(target(input_ids=torch.tensor([prompt])).logits[0, -1] / temperature, -1)
        vocab = p1.shape[0]
        ctx = torch.tensor([[*prompt, v] for v in range(vocab)])
        p2 = torch.softmax(target(input_ids=ctx).logits[:, -1] / temperature, -1)
    return (p1[:, None] * p2).double().numpy()


def test_sampled_sd_follows_target_distribution(tiny_vocab_pair) -> None:  # type: ignore[no-untyped-def]
    draft, target = tiny_vocab_pair
    prompt, temperature, n_samples = [2, 5, 3], 0.8, 1500
    dec = SpeculativeDecoder(draft, target, gamma_max=2, temperature=temperature, max_new_tokens=2)
    gen = torch.Generator().manual_seed(1234)
    counts = np.zeros((8, 8))
    n_rejected = 0
    for _ in range(n_samples):
        dec.start(prompt, gen)
        while not dec.done:  # a rejection emits 1 token, so 1 or 2 rounds
            n_rejected += dec.run_round(2, NoExit()).rejected
        first, second = dec.output_ids
        counts[first, second] += 1
    assert 0.1 * n_samples < n_rejected < 0.9 * n_samples  # both verification paths ran
    expected = exact_first_two(target, prompt, temperature).ravel() * n_samples
    observed = counts.ravel()
    big = expected >= 5  # chi-square needs expected counts >= 5; pool the rest
    f_obs = np.append(observed[big], observed[~big].sum())
    f_exp = np.append(expected[big], expected[~big].sum())
    f_exp *= f_obs.sum() / f_exp.sum()  # the float32 law sums to 1 only up to rounding
    assert chisquare(f_obs, f_exp).pvalue > 1e-3


def test_sampling_is_seeded(tiny_vocab_pair) -> None:  # type: ignore[no-untyped-def]
    dec = SpeculativeDecoder(*tiny_vocab_pair, gamma_max=3, temperature=1.0, max_new_tokens=12)
    outs = [dec.generate([2, 5], 3, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma_max": 0}, "gamma_max must be an int >= 1, got 0"),
        ({"temperature": -0.1}, "temperature must be a finite number >= 0, got -0.1"),
        ({"temperature": math.nan}, "temperature must be a finite number >= 0"),
        ({"p_top": 0.0}, r"p_top must be in \(0, 1\], got 0.0"),
        ({"p_top": 1.5}, r"p_top must be in \(0, 1\], got 1.5"),
        ({"max_new_tokens": 0}, "max_new_tokens must be an int >= 1, got 0"),
        ({"eos_token_id": 64}, r"eos_token_id must be in \[0, 64\), got 64"),
    ],
)
def test_constructor_errors(micro_pair, kwargs: dict, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        SpeculativeDecoder(*micro_pair, **kwargs)


@pytest.mark.parametrize("budget", [-1, GAMMA_MAX + 1])
def test_budget_out_of_range(micro_pair, budget: int) -> None:  # type: ignore[no-untyped-def]
    dec = SpeculativeDecoder(*micro_pair, gamma_max=GAMMA_MAX)
    dec.start([3, 4])
    match = rf"budget must be an int in \[0, {GAMMA_MAX}\], got {budget}"
    with pytest.raises(ValueError, match=match):
        dec.run_round(budget, NoExit())
    with pytest.raises(ValueError, match=match):
        dec.peek(budget)


def test_misuse_errors(micro_pair) -> None:  # type: ignore[no-untyped-def]
    draft, target = micro_pair
    dec = SpeculativeDecoder(draft, target)
    with pytest.raises(AssertionError, match="start"):
        dec.run_round(1, NoExit())
    with pytest.raises(ValueError, match="empty prompt"):
        dec.start([])
    with pytest.raises(ValueError, match=r"prompt_ids must be in \[0, 64\)"):
        dec.start([3, 64])
    training = copy.deepcopy(draft).train()
    with pytest.raises(ValueError, match="draft model is in training mode"):
        SpeculativeDecoder(training, target)


def test_from_pair_and_live_backend(perturbed_pair, rng) -> None:  # type: ignore[no-untyped-def]
    pair = pair_from_models(*perturbed_pair, eos_token_id=1)
    dec = SpeculativeDecoder.from_pair(pair, gamma_max=3, max_new_tokens=10)
    assert dec.eos_token_id == 1
    backend = LiveBackend(dec, [PROMPTS[0], PROMPTS[1]])
    assert isinstance(backend, RoundBackend)
    assert (backend.gamma_max, backend.n_prompts, backend.max_new_tokens) == (3, 2, 10)
    backend.reset(1, rng)
    while not backend.done:
        backend.run_round(3, NoExit())
    assert backend.n_generated == 10
    assert dec.output_ids == reference(perturbed_pair[1], PROMPTS[1], 10, 1)
    with pytest.raises(ValueError, match=r"prompt_index must be in \[0, 2\), got 2"):
        backend.reset(2, rng)
    with pytest.raises(ValueError, match="prompts must contain at least one prompt"):
        LiveBackend(dec, [])


def test_live_backend_seeds_sampling_from_rng(tiny_vocab_pair) -> None:  # type: ignore[no-untyped-def]
    dec = SpeculativeDecoder(*tiny_vocab_pair, gamma_max=3, temperature=1.0, max_new_tokens=12)
    backend = LiveBackend(dec, [[2, 5]])
    outs = []
    for seed in (7, 7, 8):
        backend.reset(0, np.random.default_rng(seed))
        while not backend.done:
            backend.run_round(3, NoExit())
        outs.append(dec.output_ids)
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]
