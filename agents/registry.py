"""Agent catalogue: name -> class, and :func:`make_agent` (one place shows every agent)."""

from __future__ import annotations

from typing import Any

from agents.base import AnalyticPolicy
from agents.baselines import (
    DSSD,
    AdaEDLStop,
    ConfidenceStop,
    DeviceOnly,
    EntropyOnly,
    FixedBudget,
    HFHeuristic,
    LyapunovOnly,
    StaticSD,
    TargetOnly,
)
from agents.gelato import GelatoPolicy
from agents.learned import LearnedPolicy

AGENTS: dict[str, type[AnalyticPolicy]] = {
    cls.name: cls
    for cls in (
        GelatoPolicy,
        LyapunovOnly,
        StaticSD,
        DSSD,
        HFHeuristic,
        ConfidenceStop,
        AdaEDLStop,
        EntropyOnly,
        TargetOnly,
        DeviceOnly,
        FixedBudget,
        LearnedPolicy,
    )
}


def make_agent(name: str, **params: Any) -> AnalyticPolicy:
    """Build an analytic agent by name, e.g. ``make_agent("static", gamma=4, protocol="full")``.

    Raises:
        ValueError: unknown agent name (the message lists the known ones), or a parameter the
            agent does not take.

    >>> make_agent("static", gamma=2).gamma
    2
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {sorted(AGENTS)}")
    try:
        return AGENTS[name](**params)
    except TypeError as err:
        raise ValueError(f"agent {name!r} got bad parameters {sorted(params)}: {err}") from err
