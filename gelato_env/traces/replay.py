"""Replay SD rounds from a recorded trace: exact under greedy verification, microseconds a round.

A round starting at output position t with budget gamma~ and an exit rule (the live engine's
contract, ``gelato_env/sd/engine.py``):

1. cap = min(gamma~, remaining - 1), remaining = max_new_tokens - t;
2. gamma = ``realized_length(rule, H[t, :cap], max_prob[t, :cap], cap)`` on the recorded
   entropies of the draft's continuation from position t (the same tokens the live draft
   proposes, since the prefix is the target's own output). The built-in rules are causal, so
   gamma = min(s_t, cap) with s_t the rule's stop index over all gamma_max recorded tokens;
   s_t is computed at a position's first visit and kept (:class:`_StopIndex`), so a revisited
   position costs one lookup;
3. greedy: n_matches = leading recorded match bits; the emitted tokens y_t..y_{t+n_matches} are
   the target's recorded tokens (= the accepted drafts plus the correction/bonus token).
   Sampling (T > 0), a documented approximation: d_i is accepted when u_i <= accept_prob[t, i]
   with u_i ~ U(0, 1) from the env's ``np.random.Generator``, and the emitted tokens are the
   recorded target tokens, i.e. the correction token after a rejection is the recorded target
   token and the trajectory stays on the recorded (target-distributed) output;
4. EOS: the output ends right after an EOS; n_accepted = min(n_matches, tokens emitted).

No torch and no per-round loop over the vocabulary: a round is a few numpy slices.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gelato_env.sd.exit_rules import VECTORIZED_RULES, ExitRule, realized_length
from gelato_env.sd.round import DraftStats, RoundResult
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
        self._eos = trace.header.eos_token_id
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
        # Greedy: leading recorded match bits per position, shape (n_pos,); a round drafting
        # gamma tokens from position t accepts min(gamma, n_lead[t]).
        matches = self._accept_prob >= 0.5  # (n_pos, G)
        self._n_lead = np.where(
            matches.all(axis=1), matches.shape[1], np.argmin(matches, axis=1)
        ).tolist()
        self._stops = _StopIndex(self._entropy, self._max_prob, self._gamma_max)
        self._row0 = 0
        self._length = 0  # positions available for the current prompt (<= max_new_tokens)
        self._eos_end = -1  # position after the prompt's recorded EOS, -1 if not reachable
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
        recorded = int(self._offsets[prompt_index + 1]) - self._row0
        self._length = min(recorded, self._max_new)
        # the recorded output holds EOS only as its last token, so only a round ending there
        # emits it
        last = int(self._target_tokens[self._row0 + recorded - 1]) if recorded else None
        self._eos_end = recorded if last is not None and last == self._eos else -1
        self._t = 0
        self._done = False
        self._rng = rng

    def _cap(self, budget: int) -> int:
        if not isinstance(budget, (int, np.integer)) or not 0 <= budget <= self._gamma_max:
            raise ValueError(f"budget must be an int in [0, {self._gamma_max}], got {budget!r}")
        assert not self._done, "reset() a generation before running rounds"
        return min(int(budget), self._max_new - self._t - 1)

    def peek(self, budget: int) -> DraftStats:
        """Statistics of the next round's first ``min(budget, remaining - 1)`` draft tokens."""
        n = self._cap(budget)
        row = self._row0 + self._t
        return DraftStats(
            entropy=self._entropy[row, :n],
            max_prob=self._max_prob[row, :n],
            topp_size=self._topp_size[row, :n],
        )

    def run_round(self, budget: int, exit_rule: ExitRule) -> RoundResult:
        """Replay one round (module docstring, steps 1-4)."""
        cap = self._cap(budget)
        row = self._row0 + self._t
        stops = self._stops.table(exit_rule)
        if stops is None:  # a custom rule: run it on the round's tokens
            gamma = realized_length(
                exit_rule, self._entropy[row, :cap], self._max_prob[row, :cap], cap
            )
        else:
            stop = stops[row]
            if stop == _UNKNOWN:
                stop = self._stops.fill(stops, exit_rule, row)
            gamma = stop if stop < cap else cap
        accept_prob = self._accept_prob[row, :gamma]
        if self._greedy:
            n_matches = self._n_lead[row]
            if n_matches > gamma:
                n_matches = gamma
        else:
            assert self._rng is not None
            rejected = np.flatnonzero(self._rng.random(gamma) > accept_prob)
            n_matches = int(rejected[0]) if rejected.size else gamma
        end = self._t + n_matches + 1
        if end > self._length:
            end = self._length
        n_tokens = end - self._t
        self._t = end
        self._done = end == self._eos_end or end >= self._max_new
        return RoundResult(
            budget=int(budget),
            n_drafted=gamma,
            n_accepted=n_matches if n_matches < n_tokens else n_tokens,
            tokens=self._target_tokens[row : row + n_tokens],
            entropy=self._entropy[row, :gamma],
            max_prob=self._max_prob[row, :gamma],
            topp_size=self._topp_size[row, :gamma],
            accept_prob=accept_prob,
            finished=self._done,
        )


_UNKNOWN = 255  # a position whose stop index is not computed yet (gamma_max < 255)
_MAX_TABLES = 32  # stop-index tables kept, one per distinct built-in rule


class _StopIndex:
    """Per-position stop indices of the built-in exit rules over a trace, filled on first visit.

    The built-in rules are causal (the decision after token i reads tokens 1..i only), so the
    realized length of a round from position t with cap c is min(s_t, c), s_t being the rule's
    first stop over all ``gamma_max`` recorded tokens (``gamma_max`` when it never stops). One
    ``bytearray`` per rule (equal rules share it) holds s_t, or ``_UNKNOWN`` until position t
    is first played. Custom rules (any other type, which need not be causal) get no table.

    Args:
        entropy: shape ``(n_pos, G)``, recorded draft entropies, nats.
        max_prob: shape ``(n_pos, G)``, recorded draft max-probabilities.
        gamma_max: the budgets served, <= G.
    """

    def __init__(self, entropy: np.ndarray, max_prob: np.ndarray, gamma_max: int) -> None:
        if gamma_max >= _UNKNOWN:
            raise ValueError(f"gamma_max must be < {_UNKNOWN}, got {gamma_max}")
        self._entropy = entropy
        self._max_prob = max_prob
        self._gamma_max = gamma_max
        self._tables: dict[ExitRule, bytearray] = {}  # by rule equality
        self._by_id: dict[int, tuple[ExitRule, bytearray | None]] = {}  # by rule identity
        self._last_rule: ExitRule | None = None
        self._last_table: bytearray | None = None

    def table(self, rule: ExitRule) -> bytearray | None:
        """The rule's stop-index table, or None for a custom rule."""
        if rule is self._last_rule:  # the env passes one rule object round after round
            return self._last_table
        entry = self._by_id.get(id(rule))  # a few rule objects in turns (budget_threshold)
        if entry is not None and entry[0] is rule:
            table = entry[1]
        else:
            table = None
            if type(rule) in VECTORIZED_RULES:
                table = self._tables.get(rule)
                if table is None:
                    if len(self._tables) >= _MAX_TABLES:  # many distinct rules: drop the oldest
                        del self._tables[next(iter(self._tables))]
                    table = self._tables[rule] = bytearray([_UNKNOWN]) * self._entropy.shape[0]
            if len(self._by_id) >= _MAX_TABLES:
                self._by_id.clear()
            self._by_id[id(rule)] = (rule, table)  # holds the rule, so its id stays its own
        self._last_rule, self._last_table = rule, table
        return table

    def fill(self, table: bytearray, rule: ExitRule, row: int) -> int:
        """Compute, store and return position ``row``'s stop index."""
        g = self._gamma_max
        stop = realized_length(rule, self._entropy[row, :g], self._max_prob[row, :g], g)
        table[row] = stop
        return stop
