"""Agent catalogue: name -> class, and :func:`make_agent` (one place shows every agent).

Your own agents plug in without editing gelato: subclass :class:`~agents.base.AnalyticPolicy`
(implement ``decide``), make it importable (installed, or on ``PYTHONPATH``) and write a preset
file anywhere::

    # my_agent.yaml
    _target_: my_package.policies.HalfBudget   # import path of the class
    label: half                                # its row in the results (default: file name)
    params: {gamma: 4}                         # constructor arguments

``python scripts/evaluate.py agents=[gelato,/path/to/my_agent.yaml]`` then scores it next to
GELATO (:func:`load_preset` takes a preset name from ``conf/agent`` or a ``.yaml`` path;
:func:`make_agent` a registry name or an import path).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gelato_env.conf
from agents.base import AnalyticPolicy
from agents.baselines import (
    DSSD,
    AdaEDLStop,
    BudgetStatic,
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
        BudgetStatic,
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


def agent_class(name: str) -> type[AnalyticPolicy]:
    """The class of agent ``name``: a registry name or an import path ``package.module.Class``.

    Raises:
        ValueError: an unknown name (the message lists the known ones), an import path that
            does not import, or a class that is not an :class:`~agents.base.AnalyticPolicy`.

    >>> agent_class("static").__name__, agent_class("agents.baselines.StaticSD").__name__
    ('StaticSD', 'StaticSD')
    """
    if name in AGENTS:
        return AGENTS[name]
    if "." not in name:
        raise ValueError(
            f"unknown agent {name!r}; known agents: {sorted(AGENTS)}, or the import path "
            f"package.module.Class of an AnalyticPolicy subclass"
        )
    module, _, attr = name.replace(":", ".").rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"agent {name!r} cannot be imported: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, AnalyticPolicy)):
        raise ValueError(
            f"agent {name!r} must be a subclass of agents.base.AnalyticPolicy, got {cls!r}"
        )
    return cls


def make_agent(name: str, **params: Any) -> AnalyticPolicy:
    """Build an agent by name, e.g. ``make_agent("static", gamma=4, protocol="full")``.

    ``name`` is a registry name or the import path of an :class:`~agents.base.AnalyticPolicy`
    subclass (:func:`agent_class`).

    Raises:
        ValueError: unknown agent name (the message lists the known ones), an import path that
            fails, or a parameter the agent does not take.

    >>> make_agent("static", gamma=2).gamma
    2
    """
    cls = agent_class(name)
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"agent {name!r} got bad parameters {sorted(params)}: {err}") from err


#: the named agent presets (``conf/agent/<preset>.yaml``: registry ``name``, row ``label``,
#: constructor ``params``), shared by ``scripts/evaluate.py``, ``scripts/train.py`` and the sweep
PRESET_DIR = Path(gelato_env.conf.__file__).resolve().parent / "agent"  # shipped in the wheel
#: the keys a preset file may hold (``name``: a registry agent; ``_target_``: an import path)
PRESET_KEYS = ("name", "label", "params", "_target_")


@dataclass(frozen=True)
class AgentPreset:
    """A named agent configuration: which registry agent, its table label and parameters."""

    name: str
    label: str
    params: dict[str, Any]


def _preset_path(preset: str) -> Path:
    """``conf/agent/<preset>.yaml``, or ``preset`` itself when it names a ``.yaml`` file."""
    if preset.endswith((".yaml", ".yml")):
        path = Path(preset).expanduser()
        if not path.is_file():
            raise ValueError(f"agent preset file {path} not found")
        return path
    return PRESET_DIR / f"{preset}.yaml"


def load_preset(preset: str, overrides: Mapping[str, Any] | None = None) -> AgentPreset:
    """The preset ``conf/agent/<preset>.yaml``, its params updated with ``overrides[label]``.

    ``preset`` may also be the path of a ``.yaml`` preset file anywhere; a preset with
    ``_target_`` (an import path) instead of ``name`` plugs in the user's own agent class (the
    module docstring). Its label defaults to the file name.

    Raises:
        ValueError: no such preset file (the message lists the known presets); a preset file
            that is not valid YAML, not a mapping, has keys other than :data:`PRESET_KEYS` or
            non-mapping ``params`` (each naming the file); a preset naming an unknown agent;
            overrides for the label that are not a mapping.
    """
    import yaml

    path = _preset_path(preset)
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
    if "_target_" in spec and "name" in spec:
        raise ValueError(f"{path}: give name (a registry agent) or _target_ (an import path), "
                         "not both")  # fmt: skip
    name = str(spec.get("_target_", spec.get("name", path.stem)))
    label = str(spec.get("label", path.stem))
    if name not in AGENTS and "_target_" not in spec:
        raise ValueError(f"{path}: unknown agent {name!r}; known agents: {sorted(AGENTS)}")
    try:
        agent_class(name)
    except ValueError as err:
        raise ValueError(f"{path}: _target_ {err}") from None
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
