"""Long-term device energy budget and its virtual queue (docs/design.md §5).

The budget is a long-term average constraint, enforced by Lyapunov optimisation through a
virtual queue Q that grows by each round's energy and drains by the round's allowance::

    Q_{k+1} = max(0, Q_k + E_k - A_k)

with the allowance A_k by mode:

- ``per_round``: A_k = E_bar, J per round (the paper's eq. 7 reading [S]);
- ``per_token``: A_k = e_bar·N_k, J per generated token;
- ``per_second``: A_k = P_bar·T_k, i.e. an average power P_bar in W.

Q is mean-rate stable iff the long-term average energy meets the budget. Methods are plain
arithmetic: Python numbers in give Python floats out, numpy arrays broadcast, and the two agree
exactly.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
F = TypeVar("F", float, FloatArray)
Tokens = int | npt.NDArray[np.integer[Any]] | FloatArray  # N_k: a count, or counts

BUDGET_MODES: tuple[str, ...] = ("per_round", "per_token", "per_second")
_UNITS = {"per_round": "J/round", "per_token": "J/token", "per_second": "W"}


@dataclass(frozen=True, slots=True)
class EnergyBudget:
    """A long-term device energy budget.

    Attributes:
        mode: ``"per_round"`` (``value`` in J/round), ``"per_token"`` (J/token) or
            ``"per_second"`` (W).
        value: the budget in the mode's unit, > 0; ``math.inf`` means unconstrained (the queue
            stays at 0).
    """

    mode: str
    value: float

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str):
            raise TypeError(f"mode must be a string, got {self.mode!r}")
        if self.mode not in BUDGET_MODES:
            raise ValueError(f"mode must be one of {list(BUDGET_MODES)}, got {self.mode!r}")
        if not isinstance(self.value, numbers.Real) or isinstance(self.value, bool):
            raise TypeError(f"value must be a real number, got {self.value!r}")
        value = float(self.value)
        if math.isnan(value) or value <= 0:
            raise ValueError(f"value must be > 0 ({_UNITS[self.mode]}), got {self.value!r}")
        object.__setattr__(self, "value", value)

    @property
    def unit(self) -> str:
        """The unit of ``value``: J/round, J/token or W."""
        return _UNITS[self.mode]

    def allowance(self, n_tokens: Tokens, latency_s: F) -> F:
        """A_k, the energy in joules the budget grants a round.

        Args:
            n_tokens: N_k, tokens the round produced (an int or an array).
            latency_s: T_k, the round's latency in seconds (a float or an array).

        Returns:
            Joules, a float or an array broadcast from the inputs.

        >>> EnergyBudget("per_token", 0.2).allowance(3, 0.15)
        0.6000000000000001
        >>> EnergyBudget("per_second", 2.0).allowance(3, 0.15)
        0.3
        """
        if self.mode == "per_round":
            return self.value + 0.0 * latency_s
        if self.mode == "per_token":
            return self.value * n_tokens + 0.0 * latency_s  # type: ignore[return-value]
        return self.value * latency_s

    def settle(self, queue: F, energy_j: F, n_tokens: Tokens, latency_s: F) -> tuple[F, F]:
        """(A_k, Q_{k+1}): the round's allowance and the queue after it, computed once.

        Args:
            queue: Q_k in joules (>= 0).
            energy_j: E_k, the round's device energy in joules.
            n_tokens: N_k, tokens the round produced.
            latency_s: T_k, the round's latency in seconds.

        Returns:
            The allowance A_k (J) and Q_{k+1} = max(0, Q_k + E_k - A_k) (J); floats, or arrays
            broadcast from the inputs.

        >>> EnergyBudget("per_round", 0.3).settle(0.5, 0.54, 3, 0.18)
        (0.3, 0.74)
        """
        allowance_j = self.allowance(n_tokens, latency_s)
        backlog = queue + energy_j - allowance_j
        if isinstance(backlog, np.ndarray):
            return allowance_j, np.maximum(backlog, 0.0)
        return allowance_j, (backlog if backlog > 0.0 else 0.0)

    def queue_update(self, queue: F, energy_j: F, n_tokens: Tokens, latency_s: F) -> F:
        """Q_{k+1} = max(0, Q_k + E_k - A_k), the virtual energy queue after a round, joules.

        Args:
            queue: Q_k in joules (>= 0).
            energy_j: E_k, the round's device energy in joules.
            n_tokens: N_k, tokens the round produced.
            latency_s: T_k, the round's latency in seconds.

        Returns:
            Q_{k+1} in joules, never negative; a float or an array broadcast from the inputs.

        >>> EnergyBudget("per_round", 0.3).queue_update(0.5, 0.54, 3, 0.18)
        0.74
        >>> EnergyBudget("per_round", 0.3).queue_update(0.0, 0.1, 3, 0.18)
        0.0
        """
        return self.settle(queue, energy_j, n_tokens, latency_s)[1]
