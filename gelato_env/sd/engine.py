"""The lossless speculative-decoding engine on real ``transformers`` models (docs/design.md §2).

:class:`SpeculativeDecoder` runs one SD round at a time on a draft/target pair of causal LMs
with KV caches; :class:`LiveBackend` exposes it to the env as a ``RoundBackend``. Trace replay
(``gelato_env.traces``) reproduces these rounds exactly under greedy verification, so the round
semantics below are a contract.

Round semantics (budget gamma~ in 0..gamma_max, remaining = max_new_tokens - n_generated):

1. Cap. The realized draft length is at most ``min(gamma~, remaining - 1)``, so a round never
   outputs more than ``remaining`` tokens. gamma~ = 0 (or a cap of 0): no drafting, the target
   produces one token.
2. Draft, token by token. q_i = softmax(draft_logits / T) for T > 0 (d_i ~ q_i), and
   softmax(draft_logits) for T = 0 (d_i = argmax). Per token: entropy H_i = -sum q ln q (nats,
   float32 from log-softmax), max-prob, top-p set size (smallest k with top-k mass >= p_top).
   After token i is drafted the exit rule is consulted: ``stop_after(H[:i], mp[:i]) == i``
   stops drafting (token i is kept and sent). The last drafted token is not fed to the draft
   within the round; it is fed next round if accepted.
3. Verify. One target forward over its pending context token(s) and d_1..d_gamma gives gamma+1
   logits. Greedy (T = 0): accept while the target argmax equals d_i, then append the target
   argmax (correction at the first mismatch, bonus after all accepted); accept_prob is the
   match bit of every drafted token (also after the first mismatch). Sampling (T > 0): see
   :func:`gelato_env.sd.verify.speculative_sampling`; accept_prob = min(1, p/q).
4. EOS. If an accepted draft token is EOS, the output ends right after it (no correction or
   bonus token) and ``n_accepted`` counts the accepted tokens up to and including that EOS;
   likewise if the correction/bonus token is EOS. The generation is ``finished`` when EOS is
   emitted or n_generated reaches max_new_tokens.

KV-cache invariant: each model's ``DynamicCache`` holds a prefix ``context[:n_cached]`` of the
accepted context, and ``context[n_cached:]`` (at least one token: the last accepted one(s)) is
fed at that model's next forward. After verification both caches are cropped to the longest
prefix still valid, never copied. ``peek`` drafts lazily into a proposal that the next
``run_round`` reuses, so peeking costs no extra forwards.

Just over 500 lines because the engine and the live backend over it share the KV-cache
invariant above.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from gelato_env.sd.exit_rules import ExitRule, NoExit
from gelato_env.sd.models import ModelPair, check_compatible, logits_width
from gelato_env.sd.round import DraftStats, RoundResult
from gelato_env.sd.verify import (
    Verdict,
    entropy_max_prob,
    greedy_verify,
    log_probs,
    speculative_sampling,
    topp_size,
)


def cache_kwarg(model: Any) -> str:
    """Name of the forward argument taking the KV cache (``cache`` in transformers 5.x)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_layers_kv(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A ``DynamicCache``'s per-layer ``(keys, values)``, each ``(B, H, N, D)``."""
    layers: list[Any] = list(cache.layers)
    return [(layer.keys, layer.values) for layer in layers]


def _device_of(model: Any) -> torch.device:
    return next(model.parameters()).device


class _CachedLM:
    """A causal LM with one ``DynamicCache`` holding ``n_cached`` context tokens."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.device = _device_of(model)
        self._cache_kw = cache_kwarg(model)
        self.cache: DynamicCache | None = None
        self.n_cached = 0

    def reset(self) -> None:
        self.cache = DynamicCache(config=self.model.config)
        self.n_cached = 0

    def forward(self, input_ids: torch.Tensor, n_logits: int) -> torch.Tensor:
        """Feed ``input_ids`` (shape ``(1, n)``) and return the last ``n_logits`` logits rows."""
        kwargs = {self._cache_kw: self.cache}
        out = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=n_logits, **kwargs)
        self.n_cached += int(input_ids.shape[1])
        return out.logits[0, -n_logits:, :]  # (n_logits, V)

    def crop_to(self, n_keep: int) -> None:
        """Drop cached tokens beyond the first ``n_keep``."""
        n_remove = self.n_cached - n_keep
        if n_remove > 0:
            assert self.cache is not None
            self.cache.crop(-n_remove)  # transformers 5.x: a negative count removes tokens
            self.n_cached = n_keep


class SpeculativeDecoder:
    """Speculative decoding of one sequence at a time with a draft and a target causal LM.

    Args:
        draft: the draft causal LM (eval mode), any ``transformers`` architecture.
        target: the target causal LM (eval mode), sharing the draft's vocabulary.
        gamma_max: largest drafting budget a round may be given (>= 1).
        temperature: T >= 0; 0 is greedy decoding (output identical to the target's greedy).
        p_top: top-p mass for the top-p set sizes reported per draft token, in (0, 1].
        max_new_tokens: output tokens after which a generation ends (>= 1).
        eos_token_id: token id that ends a generation, or None.
        vocab_size: V, the shared vocabulary both models' logits are cut to; None requires equal
            logits widths and takes that (a padded pair's V comes from
            :attr:`~gelato_env.sd.models.ModelPair.vocab_size`, via :meth:`from_pair`).

    Raises:
        ValueError: an out-of-range argument, a model in training mode, or an incompatible pair.
    """

    def __init__(
        self,
        draft: Any,
        target: Any,
        *,
        gamma_max: int = 8,
        temperature: float = 0.0,
        p_top: float = 0.9,
        max_new_tokens: int = 128,
        eos_token_id: int | None = None,
        vocab_size: int | None = None,
    ) -> None:
        if not isinstance(gamma_max, int) or isinstance(gamma_max, bool) or gamma_max < 1:
            raise ValueError(f"gamma_max must be an int >= 1, got {gamma_max!r}")
        if (
            not isinstance(temperature, (int, float))
            or not math.isfinite(temperature)
            or temperature < 0
        ):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if not isinstance(p_top, (int, float)) or not 0.0 < p_top <= 1.0:
            raise ValueError(f"p_top must be in (0, 1], got {p_top!r}")
        if (
            not isinstance(max_new_tokens, int)
            or isinstance(max_new_tokens, bool)
            or max_new_tokens < 1
        ):
            raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
        for side, model in (("draft", draft), ("target", target)):
            if getattr(model, "training", False):
                raise ValueError(f"{side} model is in training mode (dropout active); call .eval()")
        if vocab_size is None:
            vocab_size = check_compatible(draft, target)
        else:
            widest = min(logits_width(draft), logits_width(target))
            if not isinstance(vocab_size, int) or not 1 <= vocab_size <= widest:
                raise ValueError(
                    f"vocab_size must be an int in [1, {widest}] (both models' logits width), "
                    f"got {vocab_size!r}"
                )
        self.vocab_size = vocab_size
        if eos_token_id is not None and not 0 <= eos_token_id < self.vocab_size:
            raise ValueError(f"eos_token_id must be in [0, {self.vocab_size}), got {eos_token_id}")
        self.gamma_max = gamma_max
        self.temperature = float(temperature)
        self.p_top = float(p_top)
        self.max_new_tokens = max_new_tokens
        self.eos_token_id = eos_token_id
        self._draft = _CachedLM(draft)
        self._target = _CachedLM(target)
        self._context: list[int] = []
        self._n_prompt = 0
        self._done = True
        self._started = False
        self._generator: torch.Generator | None = None
        self._clear_proposal()

    @classmethod
    def from_pair(cls, pair: ModelPair, **kwargs: Any) -> SpeculativeDecoder:
        """A decoder for ``pair``; ``eos_token_id`` and ``vocab_size`` default to the pair's."""
        kwargs.setdefault("eos_token_id", pair.eos_token_id)
        kwargs.setdefault("vocab_size", pair.shared_vocab_size())
        return cls(pair.draft, pair.target, **kwargs)

    # -- state ---------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The current generation has ended (EOS or ``max_new_tokens``), or none was started."""
        return self._done

    @property
    def n_generated(self) -> int:
        """Tokens generated so far in the current generation."""
        return len(self._context) - self._n_prompt

    @property
    def output_ids(self) -> list[int]:
        """The generated token ids (prompt excluded)."""
        return self._context[self._n_prompt :]

    @property
    def device(self) -> torch.device:
        """The target model's device (where verification runs)."""
        return self._target.device

    def start(self, prompt_ids: Sequence[int], generator: torch.Generator | None = None) -> None:
        """Begin a new generation from ``prompt_ids`` (non-empty token ids); resets both caches.

        Args:
            prompt_ids: the prompt's token ids.
            generator: randomness for sampling (T > 0); None uses torch's global generator.
        """
        ids = [int(t) for t in prompt_ids]
        if not ids:
            raise ValueError("prompt_ids must contain at least one token, got an empty prompt")
        if min(ids) < 0 or max(ids) >= self.vocab_size:
            raise ValueError(
                f"prompt_ids must be in [0, {self.vocab_size}), got {min(ids)}..{max(ids)}"
            )
        self._context = ids
        self._n_prompt = len(ids)
        self._draft.reset()
        self._target.reset()
        self._generator = generator
        self._done = False
        self._started = True
        self._clear_proposal()

    # -- drafting ------------------------------------------------------------------------------

    def _clear_proposal(self) -> None:
        self._prop_tokens: list[torch.Tensor] = []  # each (1,), int64 on the draft device
        self._prop_log_q: list[torch.Tensor] = []  # each (V,), float32 log q_i
        self._prop_stats: list[torch.Tensor] = []  # each (2,): H_i in nats, max_prob
        self._prop_stats_host: list[tuple[float, float]] = []
        self._prop_draft_time_s = 0.0

    def _draft_cap(self, budget: int) -> int:
        if not isinstance(budget, (int, np.integer)) or not 0 <= budget <= self.gamma_max:
            raise ValueError(f"budget must be an int in [0, {self.gamma_max}], got {budget!r}")
        assert self._started, "start() a generation before drafting"
        assert not self._done, "the generation has finished; start() a new one"
        remaining = self.max_new_tokens - self.n_generated
        return min(int(budget), remaining - 1)

    def _draft_one(self) -> None:
        """Draft the next proposal token (feeding the draft its pending tokens first)."""
        if self._prop_tokens:
            input_ids = self._prop_tokens[-1].view(1, 1)
        else:
            pending = self._context[self._draft.n_cached :]
            input_ids = torch.tensor([pending], dtype=torch.long, device=self._draft.device)
        logits = self._draft.forward(input_ids, 1)[0, : self.vocab_size]  # (V,)
        log_q = log_probs(logits, self.temperature)
        if self.temperature > 0.0:
            token = torch.multinomial(log_q.exp(), 1, generator=self._generator)
        else:
            token = logits.argmax().view(1)
        self._prop_tokens.append(token)
        self._prop_log_q.append(log_q)
        self._prop_stats.append(entropy_max_prob(log_q))

    def _ensure_drafted(self, n: int) -> None:
        if len(self._prop_tokens) >= n:
            return
        t0 = time.perf_counter()
        while len(self._prop_tokens) < n:
            self._draft_one()
        if self._draft.device.type == "cuda":
            torch.cuda.synchronize(self._draft.device)
        self._prop_draft_time_s += time.perf_counter() - t0

    def _stats_host(self, n: int) -> list[tuple[float, float]]:
        """(H_i, max_prob_i) of the first ``n`` proposal tokens on the host (one transfer)."""
        have = len(self._prop_stats_host)
        if have < n:
            fresh = torch.stack(self._prop_stats[have:n]).double().cpu().tolist()
            self._prop_stats_host.extend((h, m) for h, m in fresh)
        return self._prop_stats_host[:n]

    def _topp_sizes(self, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        return (
            topp_size(torch.stack(self._prop_log_q[:n]), self.p_top).cpu().numpy().astype(np.int64)
        )

    def peek(self, budget: int) -> DraftStats:
        """Statistics of the next round's first draft tokens, drafting them now if needed.

        The proposal is kept: a following :meth:`run_round` proposes exactly these tokens (its
        exit rule may stop sooner). Like a round, the count is capped at remaining - 1.

        Args:
            budget: how many draft tokens to look at, in 0..gamma_max.

        Returns:
            Arrays of shape ``(min(budget, remaining - 1),)``.
        """
        n = self._draft_cap(budget)
        with torch.inference_mode():
            self._ensure_drafted(n)
            stats = np.asarray(self._stats_host(n), dtype=np.float64).reshape(n, 2)
            return DraftStats(
                entropy=stats[:, 0].copy(),
                max_prob=stats[:, 1].copy(),
                topp_size=self._topp_sizes(n),
            )

    def _draft_round(self, cap: int, exit_rule: ExitRule) -> int:
        """Step 2: draft up to ``cap`` tokens, asking ``exit_rule`` after each; returns gamma."""
        if isinstance(exit_rule, NoExit):
            self._ensure_drafted(cap)
            return cap
        n = 0
        while n < cap:
            n += 1
            self._ensure_drafted(n)
            stats = np.asarray(self._stats_host(n), dtype=np.float64)  # (n, 2)
            if exit_rule.stop_after(stats[:, 0], stats[:, 1]) == n:
                break
        return n

    # -- one round -----------------------------------------------------------------------------

    def _verify(self, gamma: int) -> Verdict:
        """Step 3: one target forward over its pending token(s) and d_1..d_gamma."""
        device = self._target.device
        pending = torch.tensor(
            self._context[self._target.n_cached :], dtype=torch.long, device=device
        )
        drafts = (
            torch.cat(self._prop_tokens[:gamma]).to(device)
            if gamma
            else torch.zeros(0, dtype=torch.long, device=device)
        )
        input_ids = torch.cat((pending, drafts)).view(1, -1)  # (1, n_pending + gamma)
        logits = self._target.forward(input_ids, gamma + 1)[:, : self.vocab_size]  # (gamma+1, V)
        if self.temperature == 0.0:
            return greedy_verify(logits, drafts)
        p = log_probs(logits, self.temperature).exp()  # (gamma + 1, V)
        q = (
            torch.stack(self._prop_log_q[:gamma]).exp().to(device)
            if gamma
            else torch.zeros(0, self.vocab_size, device=device)
        )
        return speculative_sampling(p, q, drafts, self._generator)

    def _cut_at_eos(self, verdict: Verdict) -> tuple[list[int], int, bool]:
        """Step 4: the round's output tokens, accepted count and EOS flag after the EOS cut."""
        tokens = verdict.tokens
        if self.eos_token_id is not None and self.eos_token_id in tokens:
            end = tokens.index(self.eos_token_id) + 1
            return tokens[:end], min(verdict.n_matches, end), True
        return tokens, verdict.n_matches, False

    def run_round(self, budget: int, exit_rule: ExitRule) -> RoundResult:
        """Run one SD round: draft up to ``budget`` tokens with early exit, verify, commit.

        Args:
            budget: the reference drafting budget gamma~ in 0..gamma_max.
            exit_rule: decides after each drafted token whether drafting stops.

        Returns:
            The round's result; see the module docstring for the exact semantics.
        """
        cap = self._draft_cap(budget)
        with torch.inference_mode():
            # 1-2. draft with early exit (reusing any peeked proposal)
            gamma = self._draft_round(cap, exit_rule) if cap > 0 else 0
            stats = np.asarray(self._stats_host(gamma), dtype=np.float64).reshape(gamma, 2)
            topp = self._topp_sizes(gamma)
            draft_time_s = self._prop_draft_time_s
            # 3. verify
            t0 = time.perf_counter()
            verdict = self._verify(gamma)
            # 4. EOS cut and commit
            tokens, n_accepted, hit_eos = self._cut_at_eos(verdict)
            self._commit(tokens, n_accepted)
            verify_time_s = time.perf_counter() - t0
        self._done = hit_eos or self.n_generated >= self.max_new_tokens
        return RoundResult(
            budget=int(budget),
            n_drafted=gamma,
            n_accepted=n_accepted,
            tokens=np.asarray(tokens, dtype=np.int64),
            entropy=stats[:, 0].copy(),
            max_prob=stats[:, 1].copy(),
            topp_size=topp,
            accept_prob=verdict.accept_prob,
            finished=self._done,
            draft_time_s=draft_time_s,
            verify_time_s=verify_time_s,
        )

    def _commit(self, tokens: list[int], n_accepted: int) -> None:
        """Append ``tokens`` to the context and crop both caches to their valid prefixes."""
        n_old = len(self._context)
        self._context.extend(tokens)
        n_new = len(self._context)
        # the target saw context[:n_old] + d_1..d_gamma; d_1..d_{n_accepted} are still valid
        self._target.crop_to(min(self._target.n_cached, n_old + n_accepted, n_new - 1))
        # the draft saw context[:n_old] + the proposal minus its last token (never fed)
        self._draft.crop_to(min(self._draft.n_cached, n_old + n_accepted, n_new - 1))
        self._clear_proposal()

    def prefix_kv(self, side: str) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The KV cache of one model as per-layer ``(keys, values)``, each ``(1, H, N, D)``.

        They hold ``context[:N]`` of the current (or finished) generation; the trace recorder
        reuses them instead of re-encoding the sequence. None before any forward.

        Args:
            side: ``"draft"`` or ``"target"``.
        """
        lm = {"draft": self._draft, "target": self._target}[side]
        if lm.cache is None or lm.n_cached == 0:
            return None
        return cache_layers_kv(lm.cache)

    def generate(
        self,
        prompt_ids: Sequence[int],
        budget: int,
        exit_rule: ExitRule | None = None,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Generate from ``prompt_ids`` with a fixed per-round budget; returns the new tokens."""
        rule: ExitRule = NoExit() if exit_rule is None else exit_rule
        self.start(prompt_ids, generator)
        while not self._done:
            self.run_round(budget, rule)
        return self.output_ids


class LiveBackend:
    """A ``RoundBackend`` running real models every round, over a fixed list of prompts.

    Args:
        decoder: the speculative decoder to drive.
        prompts: the prompts' token ids (each non-empty).
    """

    def __init__(self, decoder: SpeculativeDecoder, prompts: Sequence[Sequence[int]]) -> None:
        if len(prompts) == 0:
            raise ValueError("prompts must contain at least one prompt, got 0")
        for i, prompt in enumerate(prompts):
            if len(prompt) == 0:
                raise ValueError(f"prompts[{i}] must be non-empty, got an empty prompt")
        self.decoder = decoder
        self.prompts = [list(map(int, p)) for p in prompts]
        self.trace = None  # RoundBackend.trace: live models replay no trace

    @property
    def gamma_max(self) -> int:
        """Largest drafting budget this backend can serve."""
        return self.decoder.gamma_max

    @property
    def n_prompts(self) -> int:
        """Number of prompts."""
        return len(self.prompts)

    @property
    def max_new_tokens(self) -> int:
        """Output tokens after which a generation ends."""
        return self.decoder.max_new_tokens

    @property
    def n_generated(self) -> int:
        """Tokens generated so far in the current generation."""
        return self.decoder.n_generated

    @property
    def output_ids(self) -> list[int]:
        """Tokens generated so far in the current generation."""
        return self.decoder.output_ids

    @property
    def done(self) -> bool:
        """The current generation has ended."""
        return self.decoder.done

    def reset(self, prompt_index: int, rng: np.random.Generator) -> None:
        """Start prompt ``prompt_index``; under sampling, seed a torch generator from ``rng``."""
        if not 0 <= prompt_index < len(self.prompts):
            raise ValueError(
                f"prompt_index must be in [0, {len(self.prompts)}), got {prompt_index}"
            )
        generator = None
        if self.decoder.temperature > 0.0:
            generator = torch.Generator(device=self.decoder.device)
            generator.manual_seed(int(rng.integers(2**63)))
        self.decoder.start(self.prompts[prompt_index], generator)

    def peek(self, budget: int) -> DraftStats:
        """Statistics of the first ``budget`` draft tokens of the next round."""
        return self.decoder.peek(budget)

    def run_round(self, budget: int, exit_rule: ExitRule) -> RoundResult:
        """Run one live SD round."""
        return self.decoder.run_round(budget, exit_rule)
