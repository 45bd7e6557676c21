"""Agent catalogue: name -> class, and :func:`make_agent` (one place shows every agent)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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


#: the named agent presets (``conf/agent/<preset>.yaml``: registry ``name``, row ``label``,
#: constructor ``params``), shared by ``scripts/evaluate.py``, ``scripts/train.py`` and the sweep
PRESET_DIR = Path(__file__).resolve().parent.parent / "conf" / "agent"


@dataclass(frozen=True)
class AgentPreset:
    """A named agent configuration: which registry agent, its table label and parameters."""

    name: str
    label: str
    params: dict[str, Any]


def load_preset(preset: str, overrides: Mapping[str, Any] | None = None) -> AgentPreset:
    """The preset ``conf/agent/<preset>.yaml``, its params updated with ``overrides[label]``.

    Raises:
        ValueError: no such preset file (the message lists the known presets), or a preset
            naming an unknown agent.
    """
    import yaml

    path = PRESET_DIR / f"{preset}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise ValueError(f"unknown agent config {preset!r} ({path}); known: {known}")
    spec = yaml.safe_load(path.read_text()) or {}
    name, label = str(spec.get("name", preset)), str(spec.get("label", preset))
    if name not in AGENTS:
        raise ValueError(f"{path}: unknown agent {name!r}; known agents: {sorted(AGENTS)}")
    params = dict(spec.get("params") or {})
    params.update((overrides or {}).get(label, {}))
    return AgentPreset(name, label, params)
