from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from gelato_env.sd.verify import (
    entropy_max_prob,
    greedy_verify,
    log_probs,
    speculative_sampling,
    topp_size,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_entropy_max_prob_of_known_distributions() -> None:
    probs = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    stats = entropy_max_prob(probs.log())
    torch.testing.assert_close(stats[:, 0], torch.tensor([math.log(4), 0.0, math.log(2)]))
    torch.testing.assert_close(stats[:, 1], torch.tensor([0.25, 1.0, 0.5]))
    assert torch.isfinite(stats).all()


def test_log_probs_temperature() -> None:
    logits = torch.tensor([2.0, 0.0, -1.0], dtype=torch.bfloat16)
    assert log_probs(logits, 0.0).dtype == torch.float32
    torch.testing.assert_close(log_probs(logits, 0.0), log_probs(logits, 1.0))
    torch.testing.assert_close(log_probs(logits, 0.5), torch.log_softmax(logits.float() * 2, -1))


@pytest.mark.parametrize(
    ("p_top", "expected"), [(0.5, 1), (0.51, 2), (0.8, 2), (0.81, 3), (0.9, 3), (1.0, 4)]
)
def test_topp_size_boundaries(p_top: float, expected: int) -> None:
    log_q = torch.tensor([0.3, 0.5, 0.1, 0.1], dtype=torch.float64).log()
    assert int(topp_size(log_q, p_top)) == expected


def test_greedy_verify_paths() -> None:
    logits = torch.full((4, 6), -1.0)
    logits[torch.arange(4), torch.tensor([2, 3, 4, 5])] = 1.0  # target argmax 2, 3, 4, 5
    all_ok = greedy_verify(logits, torch.tensor([2, 3, 4]))
    assert (all_ok.n_matches, all_ok.tokens) == (3, [2, 3, 4, 5])  # bonus token
    mid = greedy_verify(logits, torch.tensor([2, 0, 4]))
    assert (mid.n_matches, mid.tokens) == (1, [2, 3])  # correction at the mismatch
    assert mid.accept_prob.tolist() == [1.0, 0.0, 1.0]  # match bits after the mismatch too
    none = greedy_verify(logits[:1], torch.zeros(0, dtype=torch.long))
    assert (none.n_matches, none.tokens, none.accept_prob.shape) == (0, [2], (0,))


def _random_dists(gen: torch.Generator, rows: int, vocab: int) -> torch.Tensor:
    return torch.softmax(torch.randn(rows, vocab, generator=gen, dtype=torch.float64) * 1.5, -1)


def test_speculative_sampling_first_token_follows_p() -> None:
    gen = torch.Generator().manual_seed(0)
    vocab, gamma, n_samples = 6, 2, 20000
    p, q = _random_dists(gen, gamma + 1, vocab), _random_dists(gen, gamma, vocab)
    counts = np.zeros(vocab)
    n_rejected = 0
    for _ in range(n_samples):
        drafts = torch.multinomial(q, 1, generator=gen).view(-1)  # d_i ~ q_i
        verdict = speculative_sampling(p, q, drafts, gen)
        counts[verdict.tokens[0]] += 1
        n_rejected += verdict.n_matches == 0
    assert 0.05 * n_samples < n_rejected < 0.95 * n_samples
    expected = p[0].numpy() * n_samples
    assert chisquare(counts, expected * counts.sum() / expected.sum()).pvalue > 1e-3
    # the draft law itself is rejected by the same test, so the test has power
    wrong = q[0].numpy() * n_samples
    assert chisquare(counts, wrong * counts.sum() / wrong.sum()).pvalue < 1e-6


def test_speculative_sampling_bonus_token_follows_last_p() -> None:
    gen = torch.Generator().manual_seed(1)
    vocab, gamma, n_samples = 5, 2, 8000
    p = _random_dists(gen, gamma + 1, vocab)
    q = p[:gamma].clone()  # q == p: always accepted, so the bonus row is sampled
    counts = np.zeros(vocab)
    for _ in range(n_samples):
        drafts = torch.multinomial(q, 1, generator=gen).view(-1)
        verdict = speculative_sampling(p, q, drafts, gen)
        assert verdict.n_matches == gamma
        assert verdict.accept_prob.tolist() == pytest.approx([1.0, 1.0])
        counts[verdict.tokens[-1]] += 1
    expected = p[gamma].numpy() * n_samples
    assert chisquare(counts, expected * counts.sum() / expected.sum()).pvalue > 1e-3


def test_speculative_sampling_accept_prob_and_residual() -> None:
    p = torch.tensor([[0.1, 0.9, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
    drafts = torch.tensor([0])  # p/q = 0.2 at d_1
    gen = torch.Generator().manual_seed(5)
    outcomes = [speculative_sampling(p, q, drafts, gen) for _ in range(400)]
    assert all(v.accept_prob.tolist() == pytest.approx([0.2]) for v in outcomes)
    rejected = [v for v in outcomes if v.n_matches == 0]
    # on rejection, norm(max(0, p - q)) puts all mass on token 1
    assert rejected
    assert all(v.tokens == [1] for v in rejected)
    assert 0.7 < len(rejected) / len(outcomes) < 0.9  # rejection rate 1 - 0.2
