"""Replay SD rounds from a recorded trace: exact under greedy verification, microseconds a round.

A round's semantics -- the cap, the exit rule, the leading matches, the end at EOS -- are those
of :mod:`gelato_env.traces.rounds` (docs/design.md §2, §6), which this backend plays one round at
a time on Python lists of its per-position tables. Sampling (T > 0) is a documented
approximation: d_i is accepted when u_i <= accept_prob[t, i] with u_i ~ U(0, 1) from the env's
``np.random.Generator``, and the emitted tokens are the recorded target tokens (the correction
token after a rejection is the recorded target token, so the trajectory stays on the recorded,
target-distributed output).

No torch and no per-round loop over the vocabulary: a round is a few list lookups and slices.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gelato_env.sd.exit_rules import ExitRule, realized_length
from gelato_env.sd.round import DraftStats, RoundResult
from gelato_env.traces.rounds import RoundTable, stop_indices
from gelato_env.traces.store import HEADER_FILE, Trace, check_request, load_trace


class ReplayBackend:
    """A ``RoundBackend`` that replays a recorded trace (docs/design.md §6).

    Args:
        trace: a loaded :class:`~gelato_env.traces.store.Trace` or its directory.
        max_new_tokens: generation length; None for the recorded one (must not exceed it).
        gamma_max: largest budget served; None for the recorded one (must not exceed it).
        temperature: if given, must equal the recorded temperature (guards against replaying a
            greedy trace in a sampling experiment and vice versa).

    Raises:
        TraceError: the trace cannot serve the requested settings (names the file).
    """

    def __init__(
        self,
        trace: Trace | str | os.PathLike[str],
        *,
        max_new_tokens: int | None = None,
        gamma_max: int | None = None,
        temperature: float | None = None,
    ) -> None:
        for name, value in (("max_new_tokens", max_new_tokens), ("gamma_max", gamma_max)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(trace, Trace):
            trace = load_trace(Path(trace))
        # re-run the metadata checks against the already-loaded trace (no I/O)
        check_request(
            trace.header, trace.path / HEADER_FILE, gamma_max=gamma_max,
            max_new_tokens=max_new_tokens, temperature=temperature,
        )  # fmt: skip
        self.trace = trace
        self._gamma_max = trace.gamma_max if gamma_max is None else gamma_max
        self._max_new = trace.header.max_new_tokens if max_new_tokens is None else max_new_tokens
        self._greedy = trace.header.greedy
        self._offsets = trace.prompt_offsets
        # Hot-path copies in the dtypes RoundResult carries, converted once here rather than
        # per round (the columns are stored compactly and memory-mapped).
        self._entropy = np.ascontiguousarray(trace.entropy, dtype=np.float64)
        self._max_prob = np.ascontiguousarray(trace.max_prob, dtype=np.float64)
        self._topp_size = np.ascontiguousarray(trace.topp_size, dtype=np.int64)
        self._accept_prob = np.ascontiguousarray(trace.accept_prob, dtype=np.float64)
        self._target_tokens = np.ascontiguousarray(trace.target_tokens, dtype=np.int64)
        for column in (self._entropy, self._max_prob, self._topp_size, self._accept_prob):
            column.flags.writeable = False  # RoundResult arrays are views of these
        self._target_tokens.flags.writeable = False
        self.rounds = RoundTable.from_trace(
            trace, gamma_max=self._gamma_max, max_new_tokens=self._max_new
        )
        self._rows = self.rounds.row_lists()
        self._stops = _StopCache(
            self._entropy[:, : self._gamma_max], self._max_prob[:, : self._gamma_max]
        )
        self._row0 = 0
        self._t = 0
        self._done = True
        self._rng: np.random.Generator | None = None

    # -- RoundBackend properties ---------------------------------------------------------------

    @property
    def gamma_max(self) -> int:
        """Largest drafting budget served."""
        return self._gamma_max

    @property
    def n_prompts(self) -> int:
        """Number of recorded prompts."""
        return self.trace.n_prompts

    @property
    def max_new_tokens(self) -> int:
        """Output tokens after which a generation ends (EOS may end it sooner)."""
        return self._max_new

    @property
    def n_generated(self) -> int:
        """Tokens generated so far in the current generation (= the current position t)."""
        return self._t

    @property
    def done(self) -> bool:
        """The current generation has ended (or none was started)."""
        return self._done

    @property
    def output_ids(self) -> list[int]:
        """Tokens generated so far in the current generation."""
        return self.trace.target_tokens[self._row0 : self._row0 + self._t].tolist()

    # -- lifecycle -----------------------------------------------------------------------------

    def reset(self, prompt_index: int, rng: np.random.Generator) -> None:
        """Start prompt ``prompt_index``; sampled acceptances are drawn from ``rng``."""
        if not 0 <= prompt_index < self.n_prompts:
            raise ValueError(f"prompt_index must be in [0, {self.n_prompts}), got {prompt_index}")
        self._row0 = int(self._offsets[prompt_index])
        self._t = 0
        self._done = False
        self._rng = rng

    def _cap(self, budget: int, row: int) -> int:
        """Step 1: min(budget, cap_left[row]), after checking the budget."""
        if budget.__class__ is not int or not 0 <= budget <= self._gamma_max:  # fast path: int
            if not isinstance(budget, np.integer) or not 0 <= budget <= self._gamma_max:
                raise ValueError(f"budget must be an int in [0, {self._gamma_max}], got {budget!r}")
            budget = int(budget)
        assert not self._done, "reset() a generation before running rounds"
        cap_left = self._rows.cap_left[row]
        return budget if budget < cap_left else cap_left

    def peek(self, budget: int) -> DraftStats:
        """Statistics of the next round's first ``min(budget, remaining - 1)`` draft tokens."""
        row = self._row0 + self._t
        n = self._cap(budget, row)
        return DraftStats(
            entropy=self._entropy[row, :n],
            max_prob=self._max_prob[row, :n],
            topp_size=self._topp_size[row, :n],
        )

    def run_round(self, budget: int, exit_rule: ExitRule) -> RoundResult:
        """Replay one round (:mod:`gelato_env.traces.rounds`, steps 1-4)."""
        row = self._row0 + self._t
        cap = self._cap(budget, row)
        stops = self._stops.get(exit_rule)
        if stops is None:  # a per-round rule: run it on the round's tokens
            gamma = realized_length(
                exit_rule, self._entropy[row, :cap], self._max_prob[row, :cap], cap
            )
        else:
            stop = stops[row]
            gamma = stop if stop < cap else cap
        accept_prob = self._accept_prob[row, :gamma]
        if self._greedy:
            n_matches = self._rows.n_lead[row]
            if n_matches > gamma:
                n_matches = gamma
        else:
            assert self._rng is not None
            rejected = np.flatnonzero(self._rng.random(gamma) > accept_prob)
            n_matches = int(rejected[0]) if rejected.size else gamma
        n_tokens, n_accepted, self._done = self._rows.settle(row, n_matches)
        self._t += n_tokens
        return RoundResult(  # positional: cheaper than keywords on the hot path
            int(budget),  # budget
            gamma,  # n_drafted
            n_accepted,
            self._target_tokens[row : row + n_tokens],  # tokens
            self._entropy[row, :gamma],  # entropy
            self._max_prob[row, :gamma],  # max_prob
            self._topp_size[row, :gamma],  # topp_size
            accept_prob,
            self._done,  # finished
        )


_MAX_RULES = 32  # stop-index lists kept, one per distinct rule


class _StopCache:
    """Stop indices (:func:`~gelato_env.traces.rounds.stop_indices`) of the rules played so far.

    Computed over the whole trace on a rule's first round (about a millisecond per 10^4 rows)
    and kept as a list, by rule equality (equal rules share it) and by identity (the env passes
    one rule object round after round; a hash of a frozen dataclass costs more than a lookup).
    None for a per-round rule.

    Args:
        entropy: shape ``(n_pos, G)``, float64, recorded draft entropies, nats.
        max_prob: shape ``(n_pos, G)``, float64, recorded draft max-probabilities.
    """

    def __init__(self, entropy: np.ndarray, max_prob: np.ndarray) -> None:
        self._entropy = np.ascontiguousarray(entropy)
        self._max_prob = np.ascontiguousarray(max_prob)
        self._by_rule: dict[ExitRule, list[int] | None] = {}
        self._last: tuple[ExitRule | None, list[int] | None] = (None, None)
        self._by_id: dict[int, tuple[ExitRule, list[int] | None]] = {}

    def get(self, rule: ExitRule) -> list[int] | None:
        """The rule's stop index per row, or None for a per-round rule."""
        last_rule, last_stops = self._last
        if rule is last_rule:
            return last_stops
        entry = self._by_id.get(id(rule))
        if entry is not None and entry[0] is rule:
            stops = entry[1]
        else:
            try:
                stops = self._by_rule[rule]
            except KeyError:
                computed = stop_indices(rule, self._entropy, self._max_prob)
                stops = None if computed is None else computed.tolist()
                if len(self._by_rule) >= _MAX_RULES:  # many distinct rules: drop the oldest
                    del self._by_rule[next(iter(self._by_rule))]
                self._by_rule[rule] = stops
            except TypeError:  # an unhashable custom rule
                stops = None
            if len(self._by_id) >= _MAX_RULES:
                self._by_id.clear()
            self._by_id[id(rule)] = (rule, stops)  # holds the rule, so its id stays its own
        self._last = (rule, stops)
        return stops
