"""Held-out prompts: a fixed split of a trace's prompts, and a backend serving one side of it.

A trace's prompts are split into a training and a disjoint evaluation set by
:func:`split_prompts`: prompts are ranked by the SHA-256 of their prompt id (the trace header's
``prompt_ids``) and the first ``ceil(eval_fraction * n)`` form the evaluation set. The split
depends only on the ids, so it is the same on every run, machine and seed; GELATO calibrates on
the training side (docs/design.md §5, Calibration) and ``scripts/train.py`` trains on it. Each
single env sees its set through :class:`gelato_env.backends.PromptSubset` (re-exported here), a
``RoundBackend`` that renumbers the chosen prompts 0..m-1 and keeps the whole trace for
calibration; gelato's vector env replays a trace restricted to the set (:func:`subset_trace`),
which plays the same rounds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gelato_env.backends import PromptSubset

if TYPE_CHECKING:
    from gelato_env.traces.store import Trace


@dataclass(frozen=True)
class PromptSplit:
    """Disjoint training and evaluation prompt indices of one trace.

    Attributes:
        train: trace prompt indices used for training, ascending.
        eval: trace prompt indices held out for evaluation, ascending.
    """

    train: tuple[int, ...]
    eval: tuple[int, ...]

    def to_dict(self) -> dict[str, list[int]]:
        """A JSON-serializable dict."""
        return {"train": list(self.train), "eval": list(self.eval)}


def split_prompts(prompt_ids: Sequence[str], eval_fraction: float) -> PromptSplit:
    """Split prompts by the SHA-256 of their ids (see the module docstring).

    Args:
        prompt_ids: the trace's prompt ids, in row order (``trace.header.prompt_ids``).
        eval_fraction: share held out, in (0, 1); at least one prompt lands in each set.

    Raises:
        ValueError: fewer than 2 prompts, or ``eval_fraction`` outside (0, 1).

    >>> split_prompts(["a", "b", "c", "d"], 0.25).eval
    (3,)
    """
    n = len(prompt_ids)
    if n < 2:
        raise ValueError(f"a prompt split needs >= 2 prompts, got {n}")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    ranked = sorted(range(n), key=lambda i: hashlib.sha256(prompt_ids[i].encode()).hexdigest())
    n_eval = min(max(math.ceil(eval_fraction * n), 1), n - 1)
    held_out = sorted(ranked[:n_eval])
    return PromptSplit(train=tuple(sorted(ranked[n_eval:])), eval=tuple(held_out))


def subset_trace(trace: Trace, indices: Sequence[int]) -> Trace:
    """``trace`` restricted to its prompts ``indices``, renumbered 0..m-1 (in memory).

    The rows (output positions) of each chosen prompt are copied in the given order, so a
    replay of the subset plays, for subset prompt i, exactly the rounds a
    :class:`PromptSubset` plays for it; a backend over the subset can feed
    :class:`gelato_env.vector.GelatoVectorEnv`, which replays a whole trace. The header's
    ``checksum`` becomes the SHA-256 of the parent's checksum and ``indices`` (a cache keyed on
    it never mixes the two), and ``columns`` is emptied (the parent's on-disk shapes).

    Raises:
        ValueError: no indices, or an index outside the trace's prompts.
    """
    idx = [int(i) for i in indices]
    if not idx:
        raise ValueError("indices must not be empty")
    bad = [i for i in idx if not 0 <= i < trace.n_prompts]
    if bad:
        raise ValueError(f"prompt indices {bad} outside [0, {trace.n_prompts}) of {trace.path}")

    def rows(offsets: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Row numbers of the chosen prompts under ``offsets``, and the subset's offsets."""
        spans = [np.arange(offsets[i], offsets[i + 1], dtype=np.int64) for i in idx]
        sizes = np.array([len(span) for span in spans], dtype=np.int64)
        return np.concatenate(spans), np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    pos, offsets = rows(trace.prompt_offsets)
    tok, token_offsets = rows(trace.prompt_token_offsets)
    key = f"{trace.header.checksum}:{','.join(map(str, idx))}"
    header = dataclasses.replace(
        trace.header,
        prompt_ids=tuple(trace.header.prompt_ids[i] for i in idx),
        n_positions=len(pos),
        checksum=hashlib.sha256(key.encode()).hexdigest(),
        columns={},
    )
    return dataclasses.replace(
        trace, header=header, target_tokens=trace.target_tokens[pos],
        draft_tokens=trace.draft_tokens[pos], entropy=trace.entropy[pos],
        max_prob=trace.max_prob[pos], topp_size=trace.topp_size[pos],
        accept_prob=trace.accept_prob[pos], prompt_offsets=offsets,
        prompt_tokens=trace.prompt_tokens[tok], prompt_token_offsets=token_offsets,
    )  # fmt: skip


__all__ = ["PromptSplit", "PromptSubset", "split_prompts", "subset_trace"]
