"""The vector env's lookup tables: a step's per-env work as gathers (docs/design.md §2, §6).

For fixed settings, everything a replayed round yields is a function of (trace row, budget,
threshold level) -- the round semantics of :class:`~gelato_env.traces.rounds.RoundTable` -- and
the drafted tokens' statistics a function of (row, gamma). :class:`StepTables` tabulates both
once per trace, so a step gathers one row of each per env instead of running the exit rule and
per-token sums on ``(N, G)`` blocks. The tables hold exactly what the per-round arithmetic
gives (the same float operations in the same order), so the vector env stays bit-identical to
the single env -- except the closed-form EMA offsets, which only ``rng="batched"`` uses.

Random trace positions make every gather a cache miss on large traces, so each table packs
what a step needs into one row: 16 bytes of round outcome, 32 bytes of drafted statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gelato_env.sd.exit_rules import ExitRule
from gelato_env.system import SystemParams, uplink_bits
from gelato_env.traces.rounds import RoundTable
from gelato_env.traces.store import Trace

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: columns of :attr:`StepTables.outcome`
N_DRAFTED, N_ACCEPTED, N_TOKENS, FINISHED = range(4)


class StepTables:
    """Per-position tables of one trace under one env setting.

    Args:
        trace: the replayed trace.
        params: the system setting (its payload prices the uplink).
        rules: the exit rule, or one rule per threshold level (``budget_threshold``).
        max_new_tokens: the generation cap.
        ema_decay: the EMA factor beta.

    Attributes:
        rounds: the round semantics (:class:`~gelato_env.traces.rounds.RoundTable`).
        width: G + 1, the row stride of the flat tables.
        outcome: shape ``(n_levels n_pos (G + 1), 4)``, int32, greedy traces with built-in rules
            only (else None): row ``(level n_pos + row) (G + 1) + budget`` -> (n_drafted,
            n_accepted, n_tokens, finished) of :meth:`RoundTable.play`.
        drafted: shape ``(n_pos (G + 1), 4)``, float64, row ``row (G + 1) + gamma`` -> the
            uplink payload (bits, an integer), the mean entropy of the gamma drafted tokens
            (nats, 0 at gamma = 0) and the two EMAs after them from EMAs of 0 (the closed form
            of ``rng="batched"``).
        ema_terms: shape ``(n_pos, G, 2)``, ``(1 - beta) (H_j, p_max_j)``, the EMA increments
            (the exact, token-by-token EMA of ``rng="per_env"``).
        ema_decay_pow: shape ``(G + 1,)``, beta ** gamma.
        ema_start: shape ``(2, n_pos)``, ``(H_0, p_max_0)``, the EMAs of a prompt starting at a
            row (the single env's ``peek(1)``).
    """

    def __init__(
        self,
        trace: Trace,
        params: SystemParams,
        rules: Sequence[ExitRule],
        max_new_tokens: int,
        ema_decay: float,
    ) -> None:
        g, beta = params.gamma_max, ema_decay
        self.width = g + 1
        self.rounds = RoundTable.from_trace(
            trace, gamma_max=g, max_new_tokens=max_new_tokens, rules=rules
        )
        n_pos = self.rounds.n_pos
        self.outcome: npt.NDArray[np.int32] | None = None
        if self.rounds.greedy and self.rounds.stops is not None:
            rows = np.arange(n_pos)[:, None]  # (n_pos, 1)
            budgets = np.arange(g + 1)[None, :]  # (1, G + 1)
            levels = [self.rounds.play(rows, budgets, level) for level in range(len(rules))]
            self.outcome = np.stack(
                [
                    np.stack([o.n_drafted, o.n_accepted, o.n_tokens, o.finished], axis=-1)
                    for o in levels
                ]
            ).reshape(-1, 4).astype(np.int32)  # fmt: skip

        entropy = np.asarray(trace.entropy[:, :g], dtype=np.float64)  # (n_pos, G)
        max_prob = np.asarray(trace.max_prob[:, :g], dtype=np.float64)
        # Sequential sums over the first gamma tokens (cumsum adds left to right, as the env).
        zero = np.zeros((n_pos, 1))
        topp_sum = np.cumsum(trace.topp_size[:, :g], axis=1, dtype=np.int64)
        topp_sum = np.concatenate([zero.astype(np.int64), topp_sum], axis=1)  # (n_pos, G + 1)
        gammas = np.arange(g + 1)
        bits = uplink_bits(gammas[None, :], topp_sum, params.payload)  # topp reads topp_sum
        bits = np.broadcast_to(bits, topp_sum.shape).astype(np.int64)
        if int(bits.max()) >= 2**53:
            raise ValueError(f"uplink payloads of {int(bits.max())} bits are not exact in float64")
        entropy_sum = np.concatenate([zero, np.cumsum(entropy, axis=1)], axis=1)
        mean = np.divide(entropy_sum, gammas, out=np.zeros_like(entropy_sum), where=gammas > 0)
        # (n_pos, G, 2), C order: one 16 G-byte block per position (a strided table would make
        # np.take copy all of it every step)
        terms = np.stack([(1.0 - beta) * entropy, (1.0 - beta) * max_prob], axis=2)
        self.ema_terms = np.ascontiguousarray(terms)
        # the closed form: after gamma tokens ema = beta^gamma ema_0 + offset[row, gamma], the
        # offset being the sequential EMA from 0 (equal to the loop up to float rounding)
        offset = np.zeros((n_pos, g + 1, 2))
        for j in range(g):
            offset[:, j + 1] = beta * offset[:, j] + terms[:, j]
        self.drafted = np.concatenate(
            [bits[..., None].astype(np.float64), mean[..., None], offset], axis=2
        ).reshape(-1, 4)
        self.ema_decay_pow = beta ** np.arange(g + 1, dtype=np.float64)
        self.ema_start = np.stack([entropy[:, 0], max_prob[:, 0]])
