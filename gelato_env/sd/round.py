"""The seam between the speculative-decoding world and the environment.

One SD round (docs/design.md §2) is the env's unit of time. Whatever produces rounds -- the live
engine running real ``transformers`` models, or the replay of a recorded trace -- implements
:class:`RoundBackend` and returns :class:`RoundResult`. This module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from gelato_env.sd.exit_rules import ExitRule

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DraftStats:
    """Statistics of the draft tokens a round would propose, before verification.

    All arrays have shape ``(n,)``, one entry per draft token in drafting order.

    Attributes:
        entropy: generative entropy H_i = -sum_v q_i(v) ln q_i(v) of the draft distribution, nats.
        max_prob: max_v q_i(v), the draft's confidence in [0, 1].
        topp_size: number of vocabulary entries in the top-p set of q_i (>= 1).
    """

    entropy: FloatArray
    max_prob: FloatArray
    topp_size: IntArray


class RoundResult(NamedTuple):
    """What one speculative-decoding round produced (docs/design.md §2 steps 2-3).

    An immutable record. It is a ``NamedTuple`` rather than a frozen dataclass because it is
    built once per env step on the RL hot path, and a frozen dataclass's ``__init__`` costs
    about 1 us more there (``benchmarks/bench_env.py``). Array attributes have shape
    ``(n_drafted,)``.

    Attributes:
        budget: the reference drafting budget gamma~ the round was given.
        n_drafted: realized draft length gamma <= budget (early exit may stop sooner).
        n_accepted: draft tokens accepted by the target, 0 <= n_accepted <= n_drafted.
        tokens: token ids appended to the output this round, shape ``(n_tokens,)``: the accepted
            draft tokens, then the target's correction or bonus token. Shorter than
            ``n_accepted + 1`` only when EOS or ``max_new_tokens`` cut the round.
        entropy: per drafted token, entropy of q_i in nats.
        max_prob: per drafted token, max_v q_i(v).
        topp_size: per drafted token, size of the top-p set of q_i.
        accept_prob: per drafted token, min(1, p_i(d_i)/q_i(d_i)); under greedy verification
            the match bit (1.0 when d_i equals the target argmax, else 0.0).
        finished: the generation ended this round (EOS emitted or ``max_new_tokens`` reached).
        draft_time_s: measured wall-clock time of drafting (0.0 for replayed rounds).
        verify_time_s: measured wall-clock time of verification (0.0 for replayed rounds).
    """

    budget: int
    n_drafted: int
    n_accepted: int
    tokens: IntArray
    entropy: FloatArray
    max_prob: FloatArray
    topp_size: IntArray
    accept_prob: FloatArray
    finished: bool
    draft_time_s: float = 0.0
    verify_time_s: float = 0.0

    @property
    def n_tokens(self) -> int:
        """Tokens this round added to the output (N_k in the paper)."""
        return int(self.tokens.shape[0])

    @property
    def rejected(self) -> bool:
        """Whether verification rejected a draft token (drives the DSSD downlink payload)."""
        return self.n_accepted < self.n_drafted


@runtime_checkable
class RoundBackend(Protocol):
    """Produces SD rounds for one generation at a time (live models or a recorded trace).

    Lifecycle: ``reset(prompt_index, rng)`` starts the generation of one prompt; then
    ``run_round`` until ``done``. ``peek`` shows the statistics of the draft tokens the next
    round would propose, without committing anything (used by the per-token action mode);
    a following ``run_round`` with the same or smaller budget proposes exactly those tokens.
    """

    @property
    def trace(self) -> Any:
        """The recorded trace the rounds replay (whole, whatever prompts are served), or None.

        A :class:`gelato_env.traces.store.Trace` (typed ``Any`` so that ``sd/`` imports nothing
        from ``traces/``, docs/design.md §1). Live backends have none; agents that calibrate on
        a trace read it here rather than reaching through wrappers.
        """
        ...

    @property
    def gamma_max(self) -> int:
        """Largest drafting budget this backend can serve."""
        ...

    @property
    def n_prompts(self) -> int:
        """Number of prompts the backend can generate for."""
        ...

    @property
    def max_new_tokens(self) -> int:
        """Output tokens after which a generation ends (EOS may end it sooner)."""
        ...

    @property
    def n_generated(self) -> int:
        """Tokens generated so far in the current generation."""
        ...

    @property
    def done(self) -> bool:
        """The current generation has ended (EOS or ``max_new_tokens``)."""
        ...

    def reset(self, prompt_index: int, rng: np.random.Generator) -> None:
        """Start generating for prompt ``prompt_index``; all randomness comes from ``rng``."""
        ...

    def peek(self, budget: int) -> DraftStats:
        """Statistics of the first ``budget`` draft tokens of the next round."""
        ...

    def run_round(self, budget: int, exit_rule: ExitRule) -> RoundResult:
        """Draft up to ``budget`` tokens (stopping early when ``exit_rule`` says), verify them."""
        ...
