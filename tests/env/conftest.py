"""Env fixtures: the micro trace (tests/conftest.py) and live backends on the same micro pair,
prompts, gamma_max and max_new_tokens, so replay and live can be compared (synthetic models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

ACTION_MODES = ("budget", "budget_threshold", "per_token")


@pytest.fixture
def make_live_backend(micro_pair, micro_trace) -> Callable[[], Any]:  # type: ignore[no-untyped-def]
    """Factory of fresh greedy live backends serving exactly what ``micro_trace`` recorded."""
    from gelato_env.sd.engine import LiveBackend, SpeculativeDecoder

    draft, target = micro_pair
    header = micro_trace.header
    prompts = [micro_trace.prompt_ids_of(i).tolist() for i in range(micro_trace.n_prompts)]

    def make() -> Any:
        decoder = SpeculativeDecoder(
            draft,
            target,
            gamma_max=header.gamma_max,
            max_new_tokens=header.max_new_tokens,
            eos_token_id=header.eos_token_id,
        )
        return LiveBackend(decoder, prompts)

    return make


@pytest.fixture
def trace_path(micro_trace) -> str:  # type: ignore[no-untyped-def]
    return str(micro_trace.path)
