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
#: the keys a preset file may hold
PRESET_KEYS = ("name", "label", "params")


@dataclass(frozen=True)
class AgentPreset:
    """A named agent configuration: which registry agent, its table label and parameters."""

    name: str
    label: str
    params: dict[str, Any]


def load_preset(preset: str, overrides: Mapping[str, Any] | None = None) -> AgentPreset:
    """The preset ``conf/agent/<preset>.yaml``, its params updated with ``overrides[label]``.

    Raises:
        ValueError: no such preset file (the message lists the known presets); a preset file
            that is not valid YAML, not a mapping, has keys other than :data:`PRESET_KEYS` or
            non-mapping ``params`` (each naming the file); a preset naming an unknown agent;
            overrides for the label that are not a mapping.
    """
    import yaml

    path = PRESET_DIR / f"{preset}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise ValueError(f"unknown agent config {preset!r} ({path}); known: {known}")
    try:
        with path.open() as f:  # a file stream: YAML's error marks then name the file, too
            spec = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML ({exc})") from None
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise ValueError(
            f"{path}: an agent preset must be a mapping with keys {list(PRESET_KEYS)}, got "
            f"{type(spec).__name__}"
        )
    unknown = sorted(set(spec) - set(PRESET_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown preset keys {unknown}; valid keys: {list(PRESET_KEYS)}")
    name, label = str(spec.get("name", preset)), str(spec.get("label", preset))
    if name not in AGENTS:
        raise ValueError(f"{path}: unknown agent {name!r}; known agents: {sorted(AGENTS)}")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: params must be a mapping of {name!r} arguments, got {params!r}")
    params = dict(params)
    extra = (overrides or {}).get(label, {})
    if not isinstance(extra, Mapping):
        raise ValueError(
            f"agent_overrides[{label!r}] must be a mapping of parameters, got {extra!r}"
        )
    params.update(extra)
    return AgentPreset(name, label, params)
