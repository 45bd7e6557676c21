"""Draft-distribution statistics and lossless verification, as pure torch functions.

Notation follows speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers
via Speculative Decoding", Algorithm 1; Chen et al. 2023, "Accelerating Large Language Model
Decoding with Speculative Sampling") and ``transformers``' ``_speculative_sampling``:

- ``gamma``: number of drafted tokens d_1..d_gamma in the round.
- ``q``: the draft's distributions q_1..q_gamma, shape ``(gamma, V)``; d_i was drawn from q_i.
- ``p``: the target's distributions p_1..p_{gamma+1}, shape ``(gamma + 1, V)``; p_i is the
  target's next-token distribution given the context and d_1..d_{i-1}.
- ``n_matches``: accepted draft tokens (``n`` in Algorithm 1).

Nothing here holds state; the engine (``engine.py``) owns models, caches and the round loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of verifying one round's draft tokens.

    Attributes:
        n_matches: accepted draft tokens, 0 <= n_matches <= gamma.
        tokens: the accepted draft tokens d_1..d_{n_matches} followed by the target's correction
            token (at the first rejection) or bonus token (all accepted); length n_matches + 1.
        accept_prob: shape ``(gamma,)``, per drafted token min(1, p_i(d_i) / q_i(d_i)) under
            sampling, the match bit (1.0 / 0.0) under greedy verification. Computed for every
            drafted token, including those after the first rejection.
    """

    n_matches: int
    tokens: list[int]
    accept_prob: npt.NDArray[np.float64]


def log_probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log of the sampling distribution softmax(logits / T), in float32.

    Args:
        logits: shape ``(..., V)``, any floating dtype.
        temperature: T >= 0; T = 0 (greedy) uses softmax(logits), the T = 1 shape.

    Returns:
        Shape ``(..., V)``, float32 log-probabilities (finite or -inf).
    """
    scaled = logits.float()
    if temperature > 0.0:
        scaled = scaled / temperature
    return torch.log_softmax(scaled, dim=-1)


def entropy_max_prob(log_q: torch.Tensor) -> torch.Tensor:
    """Generative entropy and max-probability of distributions given as log-probabilities.

    Args:
        log_q: shape ``(..., V)``, log q(v) from :func:`log_probs` (log-softmax, so stable).

    Returns:
        Shape ``(..., 2)``: ``[..., 0]`` is H = -sum_v q(v) ln q(v) in nats, ``[..., 1]`` is
        max_v q(v). Entries with q(v) = 0 contribute 0 to H.
    """
    q = log_q.exp()
    finite_log_q = log_q.clamp_min(torch.finfo(log_q.dtype).min)  # 0 * -inf would be NaN
    entropy = -(q * finite_log_q).sum(dim=-1)
    return torch.stack((entropy, q.amax(dim=-1)), dim=-1)


def topp_size(log_q: torch.Tensor, p_top: float) -> torch.Tensor:
    """Size of the top-p set: the smallest k whose k most likely tokens hold mass >= ``p_top``.

    Args:
        log_q: shape ``(..., V)``, log-probabilities.
        p_top: the top-p mass in (0, 1].

    Returns:
        Shape ``(...)``, int64 in 1..V (V when rounding keeps the cumulative mass below 1).
    """
    sorted_q = log_q.exp().sort(dim=-1, descending=True).values
    below = (sorted_q.cumsum(dim=-1) < p_top).sum(dim=-1)
    return (below + 1).clamp_max(log_q.shape[-1])


def greedy_verify(target_logits: torch.Tensor, draft_tokens: torch.Tensor) -> Verdict:
    """Greedy verification: accept d_i while it equals the target's argmax.

    Args:
        target_logits: shape ``(gamma + 1, V)``, the target's logits at the positions predicting
            d_1..d_gamma and the token after d_gamma.
        draft_tokens: shape ``(gamma,)``, int64 d_1..d_gamma on the same device (gamma may be 0).

    Returns:
        The verdict; its last token is the target argmax at position n_matches + 1 (the
        correction after a mismatch, or the bonus token when all gamma are accepted).
    """
    gamma = draft_tokens.shape[0]
    argmax = target_logits.argmax(dim=-1)  # (gamma + 1,)
    match = argmax[:gamma] == draft_tokens  # (gamma,)
    # one device->host transfer for everything the caller needs
    host = torch.cat((argmax, draft_tokens, match.long())).tolist()
    target_ids, drafted, bits = (
        host[: gamma + 1],
        host[gamma + 1 : 2 * gamma + 1],
        host[2 * gamma + 1 :],
    )
    n_matches = gamma
    for i, bit in enumerate(bits):
        if not bit:
            n_matches = i
            break
    return Verdict(
        n_matches=n_matches,
        tokens=[*drafted[:n_matches], target_ids[n_matches]],
        accept_prob=np.asarray(bits, dtype=np.float64),
    )


def speculative_sampling(
    p: torch.Tensor,
    q: torch.Tensor,
    draft_tokens: torch.Tensor,
    generator: torch.Generator | None = None,
) -> Verdict:
    """Speculative sampling (Leviathan et al. 2023, Alg. 1; Chen et al. 2023): lossless in law.

    Accept d_i with probability min(1, p_i(d_i) / q_i(d_i)), in order, until the first
    rejection at i = n_matches + 1; there resample from norm(max(0, p_i - q_i)). If all gamma are
    accepted, sample a bonus token from p_{gamma+1}. The output then follows p exactly. Uniforms
    and the final multinomial draw come from ``generator`` (sampled on the generator's device).

    Args:
        p: shape ``(gamma + 1, V)``, target probabilities (rows sum to 1).
        q: shape ``(gamma, V)``, draft probabilities the draft tokens were sampled from.
        draft_tokens: shape ``(gamma,)``, int64 d_1..d_gamma (gamma may be 0).
        generator: source of randomness; None uses torch's global generator.

    Returns:
        The verdict, with accept_prob = min(1, p_i(d_i) / q_i(d_i)) for every drafted token.
    """
    gamma = draft_tokens.shape[0]
    rows = torch.arange(gamma, device=p.device)
    p_i = p[rows, draft_tokens]  # (gamma,)
    q_i = q[rows, draft_tokens].clamp_min(torch.finfo(q.dtype).tiny)  # d_i ~ q_i, so q_i > 0
    ratio = p_i / q_i
    sample_device = generator.device if generator is not None else p.device
    r = torch.rand(gamma, generator=generator, device=sample_device).to(p.device)
    rejected = (r > ratio).long()  # accept when r <= p_i/q_i, as in transformers
    n_matches = int((rejected.cumsum(dim=0) == 0).sum())
    if n_matches < gamma:
        residual = (p[n_matches] - q[n_matches]).clamp_min(0.0)  # max(0, p - q), shape (V,)
        mass = residual.sum()
        # p == q up to rounding leaves no residual mass; p itself is then the exact law
        next_dist = residual / mass if float(mass) > torch.finfo(p.dtype).tiny else p[n_matches]
    else:
        next_dist = p[gamma]
    next_token = torch.multinomial(next_dist.to(sample_device), 1, generator=generator)
    host = torch.cat((draft_tokens[:n_matches].cpu(), next_token.cpu())).tolist()
    return Verdict(
        n_matches=n_matches,
        tokens=host,
        accept_prob=ratio.clamp_max(1.0).double().cpu().numpy(),
    )
