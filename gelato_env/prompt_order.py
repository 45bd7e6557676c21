"""Which prompt an episode plays: a cursor walking a fixed order of the prompts (docs/design.md §7).

Both orders are a pass *without replacement*: the env keeps a cursor c and plays prompt
``order[c mod n]``, then advances c by one (next episode, or next prompt within a ``horizon``
episode). ``reset(seed=s)`` sets c = s, so

* ``reset(seed=s)`` twice plays the same prompt (Gymnasium's reset-determinism check), and
* n consecutive seeds s, s+1, ..., s+n-1 (the evaluation harness seeds episode i with
  ``seed + i``), or n episodes after one seeded reset, play n distinct prompts.

Orders:

* ``sequential``: ``order = 0, 1, ..., n-1``.
* ``random``: one fixed pseudo-random permutation of the n prompts, drawn from
  ``np.random.default_rng(PERMUTATION_SEED)`` [D] (the same on every run and machine). An
  unseeded first reset starts at a random position drawn from the env's RNG.

The draw with replacement of earlier versions played 40 episodes on fewer than 40 prompts, and a
seeded reset restarted the sequential order, so every seeded episode played prompt 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gelato_env.config import PROMPT_ORDERS

PERMUTATION_SEED = 0  # [D] seed of the fixed permutation of the ``random`` order

IntArray = npt.NDArray[np.int64]


def prompt_order(n_prompts: int, mode: str) -> IntArray:
    """The order in which episodes visit the prompts, shape ``(n_prompts,)``.

    Args:
        n_prompts: prompts the backend serves, >= 1.
        mode: ``"sequential"`` or ``"random"``.

    Raises:
        ValueError: ``n_prompts < 1`` or an unknown mode.

    >>> prompt_order(4, "sequential").tolist()
    [0, 1, 2, 3]
    >>> sorted(prompt_order(4, "random").tolist())
    [0, 1, 2, 3]
    """
    if n_prompts < 1:
        raise ValueError(f"n_prompts must be >= 1, got {n_prompts}")
    if mode not in PROMPT_ORDERS:
        raise ValueError(f"prompt_order must be one of {list(PROMPT_ORDERS)}, got {mode!r}")
    if mode == "sequential":
        return np.arange(n_prompts, dtype=np.int64)
    perm = np.random.default_rng(PERMUTATION_SEED).permutation(n_prompts)
    return perm.astype(np.int64)
