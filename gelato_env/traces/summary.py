"""Summary statistics of a recorded trace: what it holds and how its drafts are accepted.

:func:`summarize` computes every statistic of a trace in one :class:`TraceSummary` -- prompts and
positions, how outputs ended, output lengths, acceptance (overall, by entropy quintile, by draft
step), tokens per round by draft length (uncapped and played through
:class:`~gelato_env.traces.rounds.RoundTable`), entropy quantiles, rank correlations, the
alpha(H) = a * exp(b * H) fit (:func:`~gelato_env.traces.fit.fit_alpha_from_trace`) and the
header's pair and provenance. ``scripts/trace_stats.py`` prints it (and writes
:meth:`TraceSummary.to_dict` as JSON); nothing else computes these numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from gelato_env.traces.fit import AlphaFit, fit_alpha_from_trace
from gelato_env.traces.store import Trace

FloatArray = npt.NDArray[np.float64]


#: quantiles of the entropy statistics of :class:`TraceSummary` (10 %, median, 90 %)
ENTROPY_QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class TraceSummary:
    """Statistics of a trace (G = gamma_max): what it holds and how its drafts are accepted.

    The one home of trace statistics: ``scripts/trace_stats.py`` prints them, nothing else
    computes them.

    Attributes:
        n_prompts: recorded prompts.
        n_positions: recorded output positions.
        acceptance: mean acceptance over all (position, step) entries (greedy: the mean match
            bit of the recorded draft steps; sampled: the mean of min(1, p/q)).
        entropy_quintile_edges: shape ``(6,)``, entropy quintile edges, nats.
        acceptance_by_entropy_quintile: shape ``(5,)``, mean acceptance per entropy quintile.
        acceptance_by_step: shape ``(G,)``, mean acceptance of draft step j (unconditional).
        conditional_acceptance_by_step: shape ``(G,)``, P(step j accepted | steps < j accepted).
        mean_tokens_by_gamma: shape ``(G + 1,)``, expected tokens per round E[N] with a fixed
            draft length gamma = 0..G and no early exit, uncapped: 1 + the mean number of
            leading accepted steps among the first gamma at every position (ignoring the
            end-of-output cap).
        spearman_entropy: Spearman rank correlation of entropy and acceptance.
        spearman_max_prob: Spearman rank correlation of draft max-prob and acceptance.
        path: the trace directory.
        draft_id: the draft model (header).
        target_id: the target model (header).
        prompt_set: the prompt set (header).
        temperature: decoding temperature (0.0: greedy verification).
        gamma_max: recorded draft steps per position, G.
        max_new_tokens: the recording's output cap.
        p_top: cumulative mass of the recorded top-p set sizes.
        eos_token_id: the id that ended generations, or None.
        checksum: the trace's content checksum (header).
        provenance: how the trace was made (header: packages, hashes, dtype, device, versions).
        column_bytes: bytes of the trace's columns (``.npy`` data, headers excluded).
        n_ended_by_eos: prompts whose recorded output ends with the EOS token.
        n_ended_by_cap: the other prompts whose output reached ``max_new_tokens``.
        output_length_mean: mean recorded output length, tokens.
        output_length_median: median recorded output length, tokens.
        output_length_min: shortest recorded output, tokens.
        output_length_max: longest recorded output, tokens.
        tokens_per_round_by_gamma: shape ``(G + 1,)``, mean tokens per round N of a round with
            budget gamma = 0..G and no early exit played at every position through
            :class:`~gelato_env.traces.rounds.RoundTable` (the replay's round semantics: the
            round's cap and the recorded output's end apply). Sampled traces: one seeded
            Bernoulli draw per (position, step) entry decides its acceptance.
        accepted_per_round_by_gamma: shape ``(G + 1,)``, mean accepted draft tokens of the same
            rounds.
        entropy_quantiles: shape ``(3,)``, :data:`ENTROPY_QUANTILES` of the entropy over all
            (position, step) entries, nats.
        entropy_mean: mean entropy over all entries, nats.
        first_step_entropy_quantiles: shape ``(3,)``, the same quantiles of the first draft
            step's entropy (the token verification sees first), nats.
        first_step_entropy_mean: mean entropy of the first draft step, nats.
        alpha_fit: alpha^(H) = a exp(b H) fitted on every entry (:func:`fit_alpha_from_trace`,
            ``binned_log``, 20 bins); None when the trace cannot be fitted (e.g. constant
            acceptance).
    """

    n_prompts: int
    n_positions: int
    acceptance: float
    entropy_quintile_edges: FloatArray
    acceptance_by_entropy_quintile: FloatArray
    acceptance_by_step: FloatArray
    conditional_acceptance_by_step: FloatArray
    mean_tokens_by_gamma: FloatArray
    spearman_entropy: float
    spearman_max_prob: float
    path: str
    draft_id: str
    target_id: str
    prompt_set: str
    temperature: float
    gamma_max: int
    max_new_tokens: int
    p_top: float
    eos_token_id: int | None
    checksum: str
    provenance: dict[str, Any]
    column_bytes: int
    n_ended_by_eos: int
    n_ended_by_cap: int
    output_length_mean: float
    output_length_median: float
    output_length_min: int
    output_length_max: int
    tokens_per_round_by_gamma: FloatArray
    accepted_per_round_by_gamma: FloatArray
    entropy_quantiles: FloatArray
    entropy_mean: float
    first_step_entropy_quantiles: FloatArray
    first_step_entropy_mean: float
    alpha_fit: AlphaFit | None

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values: arrays as lists, NaN as None, the fit as a dict."""

        def plain(value: Any) -> Any:
            if isinstance(value, AlphaFit):
                return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
            if isinstance(value, np.ndarray):
                return [plain(v) for v in value.tolist()]
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}


def _rounds_by_gamma(trace: Trace, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """Mean (tokens, accepted drafts) per round at every position, budget 0..G, no early exit."""
    from gelato_env.sd.exit_rules import NoExit
    from gelato_env.traces.rounds import RoundTable, leading_matches

    g = trace.gamma_max
    table = RoundTable.from_trace(
        trace, gamma_max=g, max_new_tokens=trace.header.max_new_tokens, rules=[NoExit()]
    )
    rows = np.arange(table.n_pos, dtype=np.int64)
    if table.greedy:
        lead = table.n_lead
    else:  # the caller draws the acceptances (rounds.py step 3): one draw per entry
        accept = np.asarray(trace.accept_prob[:, :g], dtype=np.float64)
        bits = np.random.default_rng(seed).random(accept.shape) <= accept
        lead = leading_matches(bits.astype(np.float64))
    tokens, accepted = np.zeros(g + 1), np.zeros(g + 1)
    for gamma in range(g + 1):
        drafted = table.n_drafted(rows, np.full(table.n_pos, gamma, dtype=np.int64))
        out = table.settle(rows, drafted, np.minimum(lead, drafted))
        tokens[gamma] = float(out.n_tokens.mean())
        accepted[gamma] = float(out.n_accepted.mean())
    return tokens, accepted


def summarize(trace: Trace) -> TraceSummary:
    """Summary statistics of a trace (see :class:`TraceSummary`)."""
    from scipy.stats import spearmanr

    from gelato_env.traces.store import COLUMNS, INDEX_COLUMNS

    header = trace.header
    acc = np.asarray(trace.accept_prob, dtype=np.float64)  # (n_pos, G)
    h = np.asarray(trace.entropy, dtype=np.float64)
    mp = np.asarray(trace.max_prob, dtype=np.float64)
    edges = np.quantile(h, np.linspace(0.0, 1.0, 6))
    quintile = np.clip(np.searchsorted(edges, h.ravel(), side="right") - 1, 0, 4)
    counts = np.bincount(quintile, minlength=5)
    by_quintile = np.bincount(quintile, weights=acc.ravel(), minlength=5) / np.maximum(counts, 1)
    # survival[:, k] = P(steps 1..k+1 all accepted): a product of bits (greedy) or of min(1, p/q)
    survival = np.cumprod(acc, axis=1)  # (n_pos, G)
    mean_survival = survival.mean(axis=0)
    previous = np.concatenate([[1.0], mean_survival[:-1]])
    conditional = np.divide(
        mean_survival, previous, out=np.full_like(mean_survival, np.nan), where=previous > 0
    )
    mean_tokens = 1.0 + np.concatenate([[0.0], np.cumsum(mean_survival)])

    def rank_corr(x: FloatArray) -> float:
        if np.ptp(x) == 0 or np.ptp(acc) == 0:
            return float("nan")  # undefined for a constant input
        return float(spearmanr(x.ravel(), acc.ravel()).statistic)

    lengths = np.asarray(trace.lengths, dtype=np.int64)
    offsets = np.asarray(trace.prompt_offsets, dtype=np.int64)
    last = np.asarray(trace.target_tokens)[np.maximum(offsets[1:] - 1, 0)]
    ended_by_eos = np.zeros(lengths.shape, dtype=np.bool_)
    if header.eos_token_id is not None:  # the recorded output keeps the EOS token that ended it
        ended_by_eos = (lengths > 0) & (last == header.eos_token_id)
    ended_by_cap = ~ended_by_eos & (lengths >= header.max_new_tokens)
    tokens_per_round, accepted_per_round = _rounds_by_gamma(trace)
    try:
        alpha_fit: AlphaFit | None = fit_alpha_from_trace(trace)
    except ValueError:
        alpha_fit = None
    quantiles = np.asarray(ENTROPY_QUANTILES)

    return TraceSummary(
        n_prompts=trace.n_prompts,
        n_positions=trace.n_positions,
        acceptance=float(acc.mean()),
        entropy_quintile_edges=edges,
        acceptance_by_entropy_quintile=by_quintile,
        acceptance_by_step=acc.mean(axis=0),
        conditional_acceptance_by_step=conditional,
        mean_tokens_by_gamma=mean_tokens,
        spearman_entropy=rank_corr(h),
        spearman_max_prob=rank_corr(mp),
        path=str(trace.path),
        draft_id=header.draft_id,
        target_id=header.target_id,
        prompt_set=header.prompt_set,
        temperature=header.temperature,
        gamma_max=header.gamma_max,
        max_new_tokens=header.max_new_tokens,
        p_top=header.p_top,
        eos_token_id=header.eos_token_id,
        checksum=header.checksum,
        provenance=dict(header.provenance),
        column_bytes=sum(int(getattr(trace, name).nbytes) for name in (*COLUMNS, *INDEX_COLUMNS)),
        n_ended_by_eos=int(ended_by_eos.sum()),
        n_ended_by_cap=int(ended_by_cap.sum()),
        output_length_mean=float(lengths.mean()),
        output_length_median=float(np.median(lengths)),
        output_length_min=int(lengths.min()),
        output_length_max=int(lengths.max()),
        tokens_per_round_by_gamma=tokens_per_round,
        accepted_per_round_by_gamma=accepted_per_round,
        entropy_quantiles=np.quantile(h, quantiles),
        entropy_mean=float(h.mean()),
        first_step_entropy_quantiles=np.quantile(h[:, 0], quantiles),
        first_step_entropy_mean=float(h[:, 0].mean()),
        alpha_fit=alpha_fit,
    )
