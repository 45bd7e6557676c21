"""Building round backends: replay, live, and prompt subsets, in one place (docs/design.md §6).

:func:`build_backend` turns an :class:`~gelato_env.config.EnvConfig` into the
:class:`~gelato_env.sd.round.RoundBackend` it describes: a
:class:`~gelato_env.traces.replay.ReplayBackend` over a recorded trace (the shipped default
trace when ``trace_path`` is None), or the live engine on gelato's default model pair.
:class:`PromptSubset` serves a subset of a backend's prompts (train / held-out splits); every
backend, subset or not, names its trace as ``backend.trace`` (None for live models).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from gelato_env.config import EnvConfig
from gelato_env.system import system_setting

if TYPE_CHECKING:
    from gelato_env.sd.exit_rules import ExitRule
    from gelato_env.sd.round import DraftStats, RoundBackend, RoundResult
    from gelato_env.traces.replay import ReplayBackend
    from gelato_env.traces.store import Trace

LIVE_MAX_NEW_TOKENS = 128  # [D] as the default trace records


def config_gamma_max(config: EnvConfig) -> int:
    """The largest drafting budget of the config's system setting (after its overrides)."""
    return system_setting(config.system, **dict(config.system_overrides)).gamma_max


def build_backend(config: EnvConfig, gamma_max: int | None = None) -> RoundBackend:
    """The backend ``config.backend`` names, serving budgets up to ``gamma_max``.

    Args:
        config: the env configuration.
        gamma_max: largest budget served; None takes the config's system setting's.
    """
    g = config_gamma_max(config) if gamma_max is None else gamma_max
    if config.backend == "replay":
        return replay_backend(config, g)
    return live_backend(config, g)


def replay_backend(config: EnvConfig, gamma_max: int | None = None) -> ReplayBackend:
    """The replay backend over ``config.trace_path`` (None: the shipped default trace)."""
    from gelato_env.traces.replay import ReplayBackend
    from gelato_env.traces.store import load_trace

    g = config_gamma_max(config) if gamma_max is None else gamma_max
    path: str | os.PathLike[str]
    if config.trace_path is not None:
        path = config.trace_path
    else:
        from gelato_env.traces.default import default_trace_path

        path = default_trace_path()
    trace = load_trace(path, gamma_max=g, max_new_tokens=config.max_new_tokens)
    return ReplayBackend(trace, gamma_max=g, max_new_tokens=config.max_new_tokens)


def live_backend(config: EnvConfig, gamma_max: int) -> RoundBackend:
    """The live backend on the default pair, over the default trace's prompts.

    The pair is the one the shipped trace was recorded from (Qwen2.5-Coder 0.5B -> 1.5B, in
    the trace's dtype) and the prompts are the trace's own token ids, so live prompt index i
    is replay prompt index i. Other model pairs: build a ``LiveBackend`` and pass it as
    ``backend=``.
    """
    if config.model_pair != "default":
        raise ValueError(
            f"model_pair must be 'default' (for another pair pass backend=LiveBackend(...)), "
            f"got {config.model_pair!r}"
        )
    from gelato_env.sd.engine import LiveBackend, SpeculativeDecoder
    from gelato_env.sd.qwen_pair import load_qwen_pair
    from gelato_env.traces.default import DEFAULT_DTYPE, default_trace

    trace = default_trace()
    pair = load_qwen_pair(trace.header.provenance.get("target_dtype", DEFAULT_DTYPE))
    decoder = SpeculativeDecoder.from_pair(
        pair, gamma_max=gamma_max, max_new_tokens=config.max_new_tokens or LIVE_MAX_NEW_TOKENS
    )
    prompts = [trace.prompt_ids_of(i).tolist() for i in range(trace.n_prompts)]
    return LiveBackend(decoder, prompts)


class PromptSubset:
    """A ``RoundBackend`` serving a subset of another backend's prompts, renumbered 0..m-1.

    Args:
        backend: the full backend.
        indices: the backend's prompt indices to serve, in the new order.

    Raises:
        ValueError: no indices, or an index outside the backend's prompts.
    """

    def __init__(self, backend: RoundBackend, indices: Sequence[int]) -> None:
        if not indices:
            raise ValueError("indices must not be empty")
        bad = [i for i in indices if not 0 <= i < backend.n_prompts]
        if bad:
            raise ValueError(f"prompt indices {bad} outside [0, {backend.n_prompts})")
        self.inner = backend
        self.indices = tuple(int(i) for i in indices)

    @property
    def trace(self) -> Trace | None:
        """The inner backend's whole trace (prompt indices are the inner ones), or None."""
        return self.inner.trace

    @property
    def gamma_max(self) -> int:
        """Largest drafting budget served."""
        return self.inner.gamma_max

    @property
    def n_prompts(self) -> int:
        """Prompts in the subset."""
        return len(self.indices)

    @property
    def max_new_tokens(self) -> int:
        """Output tokens after which a generation ends."""
        return self.inner.max_new_tokens

    @property
    def n_generated(self) -> int:
        """Tokens generated so far in the current generation."""
        return self.inner.n_generated

    @property
    def done(self) -> bool:
        """The current generation has ended."""
        return self.inner.done

    @property
    def output_ids(self) -> list[int]:
        """Tokens generated so far (when the inner backend records them)."""
        return list(getattr(self.inner, "output_ids", []))

    def reset(self, prompt_index: int, rng: np.random.Generator) -> None:
        """Start subset prompt ``prompt_index`` (the inner prompt ``indices[prompt_index]``)."""
        self.inner.reset(self.indices[prompt_index], rng)

    def peek(self, budget: int) -> DraftStats:
        """Statistics of the next round's first ``budget`` draft tokens."""
        return self.inner.peek(budget)

    def run_round(self, budget: int, exit_rule: ExitRule) -> RoundResult:
        """Play one round on the inner backend."""
        return self.inner.run_round(budget, exit_rule)
