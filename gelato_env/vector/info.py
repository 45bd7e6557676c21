"""A vector step's ``info``: the arrays of :data:`STEP_INFO_KEYS` as rows of three 2D blocks.

Whole-info operations -- scattering the stepped envs into all N, masking, zeroing the envs reset
in the step -- are then one numpy call per block (float64, int64, bool) rather than one per key
(docs/design.md §7 lists the keys; :data:`~gelato_env.observation.INFO_KEYS`).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import numpy.typing as npt

from gelato_env.observation import INFO_KEYS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: ``info`` keys of a step, as arrays of shape ``(N,)`` (the single env's, less ``entropies``)
STEP_INFO_KEYS: tuple[str, ...] = tuple(k for k in INFO_KEYS if k != "entropies")
#: ``info`` keys of a reset (the single env's ``reset`` info)
RESET_INFO_KEYS = ("queue", "rate_bps", "prompt_index", "budget_used_frac", "n_generated")

_INT_INFO = (
    "prompt_index",
    "budget",
    "n_drafted",
    "n_accepted",
    "n_tokens",
    "n_generated",
    "uplink_bits",
    "downlink_bits",
)
_BOOL_INFO = ("round_complete",)
_FLOAT_INFO = tuple(k for k in STEP_INFO_KEYS if k not in _INT_INFO + _BOOL_INFO)
#: (key, block, row) of every step info key, in ``STEP_INFO_KEYS`` order
_LAYOUT = tuple(
    (key, b, keys.index(key))
    for key in STEP_INFO_KEYS
    for b, keys in enumerate((_FLOAT_INFO, _INT_INFO, _BOOL_INFO))
    if key in keys
)
#: picks the ``STEP_INFO_KEYS`` rows out of the concatenated rows of the three blocks
_ROW_ORDER = operator.itemgetter(
    *(row + sum(len(k) for k in (_FLOAT_INFO, _INT_INFO, _BOOL_INFO)[:b]) for _, b, row in _LAYOUT)
)
STEP_MASKS = tuple(f"_{k}" for k in STEP_INFO_KEYS if k not in RESET_INFO_KEYS)
RESET_MASKS = tuple(f"_{k}" for k in RESET_INFO_KEYS)


class StepInfo:
    """A step's info arrays as the rows of a float64, an int64 and a bool block, each ``(K, n)``.

    Whole-info operations (scatter, masking, zeroing finished envs) are then three numpy calls
    rather than one per key. A fresh block is allocated every step, so the ``(n,)`` arrays
    handed out (row views) stay valid after later steps.
    """

    __slots__ = ("_views", "blocks")

    def __init__(self, blocks: tuple[FloatArray, IntArray, BoolArray]) -> None:
        self.blocks = blocks
        self._views: dict[str, npt.NDArray[Any]] | None = None

    @classmethod
    def empty(cls, n: int) -> StepInfo:
        """Uninitialized blocks for ``n`` envs (``round_complete`` already True)."""
        return cls(
            (
                np.empty((len(_FLOAT_INFO), n)),
                np.empty((len(_INT_INFO), n), dtype=np.int64),
                np.ones((len(_BOOL_INFO), n), dtype=np.bool_),
            )
        )

    def views(self) -> dict[str, npt.NDArray[Any]]:
        """A new ``{key: (n,) row}`` dict in ``STEP_INFO_KEYS`` order (the rows are views)."""
        if self._views is None:
            rows = [*self.blocks[0], *self.blocks[1], *self.blocks[2]]  # row views, C speed
            self._views = dict(zip(STEP_INFO_KEYS, _ROW_ORDER(rows), strict=True))
        return dict(self._views)

    def scattered(self, n: int, sel: IntArray) -> StepInfo:
        """These values at columns ``sel`` of ``(K, n)`` blocks, zeros elsewhere."""
        out = tuple(np.zeros((b.shape[0], n), dtype=b.dtype) for b in self.blocks)
        for new, old in zip(out, self.blocks, strict=True):
            new[:, sel] = old
        return StepInfo(out)  # type: ignore[arg-type]

    def copy(self) -> StepInfo:
        """A copy of these values (one ``memcpy`` per block)."""
        return StepInfo(tuple(b.copy() for b in self.blocks))  # type: ignore[arg-type]

    def zero(self, idx: IntArray) -> None:
        """Zero the columns ``idx`` in place."""
        for b in self.blocks:
            b[:, idx] = 0
