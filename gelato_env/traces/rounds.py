"""Replayed SD rounds as per-position tables: the one home of replay round semantics.

The replay backend (:mod:`gelato_env.traces.replay`), the vector env
(:mod:`gelato_env.vector`) and the clairvoyant bound (:mod:`agents.clairvoyant`) all play rounds
through :class:`RoundTable`, so a change to what a replayed round does goes here and nowhere
else. The contract is the live engine's (``gelato_env/sd/engine.py``, docs/design.md §2); replay
follows it exactly under greedy verification (docs/design.md §6).

A round from trace row r -- prompt p, output position t = r - offset_p -- with budget b:

1. cap = min(b, ``cap_left[r]``), ``cap_left[r]`` = max_new_tokens - t - 1 (the round's
   correction/bonus token must fit);
2. gamma = min(``stops[level, r]``, cap): the exit rule's first stop over the recorded draft
   tokens (gamma_max when it never stops). The rules are causal, so one stop index per position
   serves every cap (:class:`~gelato_env.sd.exit_rules.BatchRule`);
3. greedy: n_matches = min(``n_lead[r]``, gamma), the recorded leading match bits. Sampled
   traces: the caller draws n_matches (d_i accepted when u_i <= accept_prob[r, i]);
4. n_tokens = min(n_matches + 1, ``room[r]``), ``room[r]`` = min(L_p, max_new_tokens) - t the
   recorded output left (L_p the prompt's recorded length); the generation ends when the round
   takes the last of it (a recorded output ends at EOS or at the recording's max_new_tokens);
   n_accepted = min(n_matches, n_tokens).

Every quantity is a function of (row, budget, level), so a batch of rounds is a few gathers
(:meth:`RoundTable.play`), and a single round a few list lookups (:meth:`RoundTable.row_lists`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from gelato_env.sd.exit_rules import ExitRule, is_batched

if TYPE_CHECKING:
    from gelato_env.traces.store import Trace

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def leading_matches(accept_prob: npt.ArrayLike) -> IntArray:
    """Greedy leading match bits per position: the draft tokens a round accepts, shape ``(n,)``.

    Args:
        accept_prob: shape ``(n, G)``, recorded acceptance (greedy: match bits 1.0 / 0.0).

    >>> leading_matches(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]))
    array([2, 3, 0])
    """
    matches = np.asarray(accept_prob) >= 0.5  # (n, G)
    g = matches.shape[1]
    return np.where(matches.all(axis=1), g, np.argmin(matches, axis=1)).astype(np.int64)


def stop_indices(rule: ExitRule, entropy: FloatArray, max_prob: FloatArray) -> IntArray | None:
    """Step 2's stop index of every row: the rule's first stop over all G columns, else G.

    None when ``rule`` is not a :class:`~gelato_env.sd.exit_rules.BatchRule` (it need not be
    causal, so it runs round by round on the capped tokens).

    Args:
        rule: the exit rule.
        entropy: shape ``(n_pos, G)``, float64, nats.
        max_prob: shape ``(n_pos, G)``, float64.
    """
    if not is_batched(rule):
        return None
    return rule.stop_indices(entropy, max_prob)  # type: ignore[attr-defined]


class Outcome(NamedTuple):
    """What rounds produce, as arrays of one shape (docs/design.md §2 steps 2-4).

    Attributes:
        n_drafted: realized draft length gamma.
        n_matches: leading accepted draft tokens before the output's end cuts the round.
        n_accepted: accepted draft tokens emitted, min(n_matches, n_tokens).
        n_tokens: tokens the round adds to the output, N_k.
        finished: the round ends the generation.
    """

    n_drafted: IntArray
    n_matches: IntArray
    n_accepted: IntArray
    n_tokens: IntArray
    finished: BoolArray


@dataclass(frozen=True, eq=False)
class RoundTable:
    """Per-position tables of a trace's rounds under fixed settings (module docstring).

    Build with :meth:`from_trace` or :meth:`build`. ``n_pos`` is the number of trace rows.

    Attributes:
        gamma_max: largest budget served, G.
        max_new_tokens: the generation cap.
        prompt_offsets: shape ``(n_prompts + 1,)``, first row of each prompt.
        cap_left: shape ``(n_pos,)``, max_new_tokens - t - 1 (clipped at 0).
        room: shape ``(n_pos,)``, recorded output left from the row, min(L_p, max_new) - t.
        n_lead: shape ``(n_pos,)``, leading recorded match bits over the first G draft tokens.
        stops: shape ``(n_levels, n_pos)``, each rule's stop index per row (G when it never
            stops), one level per rule given to :meth:`build`; None when a rule is not a
            :class:`~gelato_env.sd.exit_rules.BatchRule` (such rules run per round).
        greedy: whether acceptances are the recorded match bits (n_matches from ``n_lead``).
    """

    gamma_max: int
    max_new_tokens: int
    prompt_offsets: IntArray
    cap_left: IntArray
    room: IntArray
    n_lead: IntArray
    stops: IntArray | None
    greedy: bool

    @classmethod
    def build(
        cls,
        *,
        accept_prob: npt.ArrayLike,
        entropy: npt.ArrayLike | None,
        max_prob: npt.ArrayLike | None,
        prompt_offsets: npt.ArrayLike,
        max_new_tokens: int,
        gamma_max: int,
        rules: Sequence[ExitRule],
        greedy: bool = True,
    ) -> RoundTable:
        """Tables from the recorded columns (no trace object needed: the bounds build episodes).

        Args:
            accept_prob: shape ``(n_pos, >= G)``, recorded acceptance (greedy: match bits).
            entropy: shape ``(n_pos, >= G)``, draft entropies, nats (None: only rules that
                ignore them, e.g. ``NoExit``, may be given).
            max_prob: shape ``(n_pos, >= G)``, draft max-probabilities (None as ``entropy``).
            prompt_offsets: shape ``(n_prompts + 1,)``, first row of each prompt, then n_pos.
            max_new_tokens: the generation cap (>= 1).
            gamma_max: largest budget served, <= the recorded columns.
            rules: the exit rules, one ``stops`` level each.
            greedy: acceptances are match bits (deterministic rounds).
        """
        accept = np.asarray(accept_prob)
        g = int(gamma_max)
        if accept.ndim != 2 or accept.shape[1] < g:
            raise ValueError(f"accept_prob must have shape (n_pos, >= {g}), got {accept.shape}")
        offsets = np.asarray(prompt_offsets, dtype=np.int64)
        n_pos = accept.shape[0]
        lengths = np.diff(offsets)
        t = np.arange(n_pos, dtype=np.int64) - np.repeat(offsets[:-1], lengths)  # (n_pos,)
        out_len = np.repeat(np.minimum(lengths, max_new_tokens), lengths)
        if entropy is None or max_prob is None:
            entropy = max_prob = np.zeros((n_pos, g))
        h = np.asarray(entropy)[:, :g].astype(np.float64)  # (n_pos, G)
        p = np.asarray(max_prob)[:, :g].astype(np.float64)
        levels = [stop_indices(rule, h, p) for rule in rules]
        stops: IntArray | None = None
        if not any(level is None for level in levels):
            stops = np.stack(levels) if levels else np.zeros((0, n_pos), dtype=np.int64)  # type: ignore[arg-type]
        return cls(
            gamma_max=g,
            max_new_tokens=int(max_new_tokens),
            prompt_offsets=offsets,
            cap_left=np.maximum(max_new_tokens - t - 1, 0),
            room=np.maximum(out_len - t, 0),
            n_lead=leading_matches(accept[:, :g]),
            stops=stops,
            greedy=greedy,
        )

    @classmethod
    def from_trace(
        cls,
        trace: Trace,
        *,
        gamma_max: int,
        max_new_tokens: int,
        rules: Sequence[ExitRule] = (),
    ) -> RoundTable:
        """Tables of a loaded trace (its ``greedy`` header decides step 3)."""
        return cls.build(
            accept_prob=trace.accept_prob,
            entropy=trace.entropy,
            max_prob=trace.max_prob,
            prompt_offsets=trace.prompt_offsets,
            max_new_tokens=max_new_tokens,
            gamma_max=gamma_max,
            rules=rules,
            greedy=trace.header.greedy,
        )

    @property
    def n_pos(self) -> int:
        """Trace rows."""
        return int(self.room.shape[0])

    def n_drafted(self, row: IntArray, budget: IntArray, level: IntArray | int = 0) -> IntArray:
        """Steps 1-2: gamma = min(stop, budget, cap_left) of rounds at ``row``, broadcast.

        Raises:
            ValueError: the table has no stop indices (a per-round rule).
        """
        if self.stops is None:
            raise ValueError("the exit rule is not a BatchRule: run it per round")
        stop = self.stops[level, row]
        return np.minimum(np.minimum(stop, budget), self.cap_left[row])

    def settle(self, row: IntArray, n_drafted: IntArray, n_matches: IntArray) -> Outcome:
        """Step 4 for rounds at ``row`` whose leading accepted drafts are ``n_matches``."""
        room = self.room[row]
        n_tokens = np.minimum(n_matches + 1, room)
        return Outcome(
            n_drafted=n_drafted,
            n_matches=n_matches,
            n_accepted=np.minimum(n_matches, n_tokens),
            n_tokens=n_tokens,
            finished=n_tokens >= room,
        )

    def play(self, row: IntArray, budget: IntArray, level: IntArray | int = 0) -> Outcome:
        """Greedy rounds at ``row`` with ``budget`` (steps 1-4), broadcast.

        >>> from gelato_env.sd.exit_rules import NoExit
        >>> table = RoundTable.build(
        ...     accept_prob=np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]), entropy=None,
        ...     max_prob=None, prompt_offsets=[0, 3], max_new_tokens=3, gamma_max=2,
        ...     rules=[NoExit()])
        >>> out = table.play(np.array([0, 1]), np.array([2, 2]))
        >>> out.n_drafted.tolist(), out.n_tokens.tolist(), out.finished.tolist()
        ([2, 1], [3, 2], [True, True])
        """
        assert self.greedy, "sampled traces draw n_matches: use n_drafted and settle"
        gamma = self.n_drafted(row, budget, level)
        return self.settle(row, gamma, np.minimum(self.n_lead[row], gamma))

    def row_lists(self) -> RowLists:
        """The per-row columns as Python lists, for one round at a time (the single env)."""
        return RowLists(
            cap_left=self.cap_left.tolist(),
            room=self.room.tolist(),
            n_lead=self.n_lead.tolist(),
            stops=[] if self.stops is None else [s.tolist() for s in self.stops],
        )


class RowLists(NamedTuple):
    """:class:`RoundTable` columns as lists: a scalar lookup is a list index, not a numpy call.

    The single-round form of :meth:`RoundTable.n_drafted` / :meth:`RoundTable.settle`, which
    :class:`~gelato_env.traces.replay.ReplayBackend` plays on its hot path (microseconds).
    """

    cap_left: list[int]
    room: list[int]
    n_lead: list[int]
    stops: list[list[int]]

    def settle(self, row: int, n_matches: int) -> tuple[int, int, bool]:
        """(n_tokens, n_accepted, finished) of one round: :meth:`RoundTable.settle` on ints."""
        room = self.room[row]
        n_tokens = n_matches + 1 if n_matches < room else room
        return n_tokens, (n_matches if n_matches < n_tokens else n_tokens), n_tokens >= room
