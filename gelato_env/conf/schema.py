"""Structured-config schemas of the scripts' configs, registered in Hydra's ``ConfigStore``.

Each primary config (``train.yaml``, ``evaluate.yaml``, ``record_traces.yaml``) starts its
defaults list with its schema (``- schema_<name>``), whose sections type the groups it composes
(``env``, ``system``, ``algo``, ``reward``, ``prompts``), so Hydra composes in struct mode: a
misspelled key in an experiment file or on the command line fails at composition with the key's
name (``Key 'n_episode' not in 'EvaluateSchema'``; ``Could not override 'env.budget_vale'``).
The schemas hold key names and ``MISSING``; the values live in the YAML files, and their types
and ranges are checked by the code that consumes them (:class:`gelato_env.config.EnvConfig`,
``agents.train_config.TrainConfig``, ``gelato_env.traces.recorder.RecordConfig``, the scripts'
checks), whose messages show the bad value. Free-form maps (``env.system_overrides``,
``env.channel_params``, ``env.exit_params``, ``algo.kwargs``, ``agent_overrides``) accept new keys
without ``+``; their consumers check them.

The ``system`` group is a named setting (``setting``) plus field overrides (``null`` keeps the
setting's value); the primary configs interpolate ``env.system`` and ``env.system_overrides``
from it, so ``system=high_latency system.bandwidth_hz=5e6`` is the one way to choose and change
the system (:func:`check_composed` refuses ``env.system=...``).

Hydra calls :func:`register` when it starts: it imports every module under ``hydra_plugins``, and
``hydra_plugins/gelato_conf`` (shipped with the package) calls it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from gelato_env.config import EnvConfig
from gelato_env.observation import ObservationScales
from gelato_env.system.profiles import OVERRIDE_FIELDS

#: ``env`` fields whose keys are free-form (their consumers check them)
FREE_ENV_FIELDS = ("system_overrides", "channel_params", "exit_params")
#: the resolver that turns the ``system`` group into ``env.system_overrides``
SYSTEM_OVERRIDES_RESOLVER = "gelato.system_overrides"


#: field metadata of a ``dict[str, Any]`` that accepts new keys in struct mode (:func:`_unlock`)
FREE = {"free": True}


def _keys_of(cls: type, name: str, *, free: tuple[str, ...] = (),
             nested: dict[str, type] | None = None) -> type:  # fmt: skip
    """A schema with ``cls``'s field names, every value ``MISSING`` (values live in YAML).

    ``free`` names free-form map fields, ``nested`` maps a field to its own schema.
    """
    nested = nested or {}
    specs: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(cls):
        if f.name in nested:
            specs.append((f.name, nested[f.name], field(default_factory=nested[f.name])))
        elif f.name in free:
            specs.append((f.name, dict[str, Any], field(default_factory=dict, metadata=FREE)))
        else:
            specs.append((f.name, Any, field(default=MISSING)))
    return make_dataclass(name, specs)


#: ``conf/env/*.yaml`` (and ``env:`` sections): the fields of :class:`EnvConfig`
ScalesSchema = _keys_of(ObservationScales, "ScalesSchema")
EnvSchema = _keys_of(EnvConfig, "EnvSchema", free=FREE_ENV_FIELDS, nested={"scales": ScalesSchema})

#: ``conf/system/*.yaml``: a named setting and the overridable fields of ``system_setting``
SystemSchema = make_dataclass(
    "SystemSchema",
    [("setting", Any, field(default=MISSING))]
    + [(name, Any, field(default=None)) for name in OVERRIDE_FIELDS],
)


@dataclass
class AlgoSchema:
    """``conf/algo/*.yaml``: an SB3 algorithm (``agents.train_config.AlgoConfig``)."""

    name: Any = MISSING
    policy: Any = MISSING
    # the algorithm's constructor arguments
    kwargs: dict[str, Any] = field(default_factory=dict, metadata=FREE)


@dataclass
class RewardSchema:
    """``conf/reward/*.yaml``: the training reward (``agents.train_config.RewardConfig``)."""

    name: Any = MISSING
    lambda_init: Any = MISSING
    lambda_lr: Any = MISSING


@dataclass
class WandbSchema:
    """``wandb:`` sections (W&B run settings)."""

    mode: Any = MISSING
    project: Any = MISSING
    entity: Any = MISSING


@dataclass
class TrainWandb(WandbSchema):
    """``train.yaml``'s ``wandb:``."""

    log_checkpoints: Any = MISSING  # each checkpoint as a model artifact


@dataclass
class EvaluateWandb(WandbSchema):
    """``evaluate.yaml``'s ``wandb:``."""

    name: Any = MISSING  # the run name


@dataclass
class TrainSection:
    """``train.yaml``'s ``train:`` (``agents.train_config.TrainConfig`` less ``seed``)."""

    total_timesteps: Any = MISSING
    n_envs: Any = MISSING
    vec_env: Any = MISSING
    normalize_obs: Any = MISSING
    normalize_reward: Any = MISSING
    eval_fraction: Any = MISSING
    eval_freq: Any = MISSING
    n_eval_episodes: Any = MISSING
    checkpoint_freq: Any = MISSING
    keep_checkpoints: Any = MISSING
    device: Any = MISSING


@dataclass
class CompareSection:
    """``train.yaml``'s ``compare:``: learned vs analytic agents after training."""

    enabled: Any = MISSING
    agents: Any = MISSING
    n_episodes: Any = MISSING
    clairvoyant: Any = MISSING


@dataclass
class DebugSection:
    """``train.yaml``'s ``debug:``."""

    stop_after_timesteps: Any = None


@dataclass
class TrainSchema:
    """``train.yaml``: ``python scripts/train.py``."""

    seed: Any = MISSING
    env_name: Any = MISSING
    env: EnvSchema = field(default_factory=EnvSchema)  # type: ignore[valid-type]
    system: SystemSchema = field(default_factory=SystemSchema)  # type: ignore[valid-type]
    algo: AlgoSchema = field(default_factory=AlgoSchema)
    reward: RewardSchema = field(default_factory=RewardSchema)
    train: TrainSection = field(default_factory=TrainSection)
    resume: Any = MISSING
    on_config_change: Any = MISSING
    log_interval: Any = MISSING
    verbose: Any = MISSING
    progress_bar: Any = MISSING
    compare: CompareSection = field(default_factory=CompareSection)
    debug: DebugSection = field(default_factory=DebugSection)
    wandb: TrainWandb = field(default_factory=TrainWandb)


@dataclass
class SweepSection:
    """``evaluate.yaml``'s ``sweep:``: the one-run sweeps behind the plots."""

    enabled: Any = MISSING
    n_episodes: Any = MISSING
    agents: Any = MISSING
    budget_values: Any = MISSING
    v_values: Any = MISSING
    bandwidths_hz: Any = MISSING


@dataclass
class EvaluateSchema:
    """``evaluate.yaml``: ``python scripts/evaluate.py``."""

    seeds: Any = MISSING
    n_episodes: Any = MISSING
    eval_fraction: Any = MISSING
    agents: Any = MISSING
    agent_overrides: dict[str, Any] = field(default_factory=dict, metadata=FREE)  # label: params
    check_lossless: Any = MISSING
    env: EnvSchema = field(default_factory=EnvSchema)  # type: ignore[valid-type]
    system: SystemSchema = field(default_factory=SystemSchema)  # type: ignore[valid-type]
    sweep: SweepSection = field(default_factory=SweepSection)
    wandb: EvaluateWandb = field(default_factory=EvaluateWandb)
    progress: Any = MISSING


@dataclass
class PromptsSchema:
    """``conf/prompts/*.yaml``: a prompt set (keys a source does not use stay null)."""

    source: Any = MISSING
    n: Any = None
    split: Any = None  # humaneval, gsm8k
    chat_template: Any = None  # humaneval
    path: Any = None  # jsonl
    max_prompt_tokens: Any = None


@dataclass
class PairSection:
    """``record_traces.yaml``'s ``pair:``: which draft/target models."""

    kind: Any = MISSING
    draft: Any = None
    target: Any = None
    device: Any = None
    dtype: Any = None
    cache_dir: Any = None


@dataclass
class RecordSection:
    """``record_traces.yaml``'s ``record:`` (a subset of ``RecordConfig``'s fields)."""

    gamma_max: Any = MISSING
    max_new_tokens: Any = MISSING
    temperature: Any = MISSING
    p_top: Any = MISSING
    seed: Any = MISSING
    batch_positions: Any = MISSING
    num_threads: Any = None


@dataclass
class RecordSchema:
    """``record_traces.yaml``: ``python scripts/record_traces.py``."""

    pair: PairSection = field(default_factory=PairSection)
    record: RecordSection = field(default_factory=RecordSection)
    prompts: PromptsSchema = field(default_factory=PromptsSchema)
    out_dir: Any = None
    progress: Any = MISSING


#: ConfigStore name -> schema; each primary YAML file lists its schema first in its defaults
#: (group files need none: they merge into their section of the primary schema)
SCHEMAS: dict[str, type] = {
    "schema_train": TrainSchema,
    "schema_evaluate": EvaluateSchema,
    "schema_record": RecordSchema,
}


def _unlock(node: DictConfig, schema: type) -> None:
    """Let the free-form maps of ``node`` (a structured config of ``schema``) take new keys."""
    types = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.metadata.get("free"):
            OmegaConf.set_struct(node[f.name], False)
        elif dataclasses.is_dataclass(types[f.name]):
            _unlock(node[f.name], types[f.name])


def system_overrides(system: DictConfig) -> dict[str, Any]:
    """The ``system`` group's set fields: ``system_setting(system.setting, **overrides)``.

    >>> system = {"setting": "paper", "bandwidth_hz": 5e6, "device": None}
    >>> system_overrides(OmegaConf.create(system))
    {'bandwidth_hz': 5000000.0}
    """
    values = OmegaConf.to_container(system, resolve=True)
    assert isinstance(values, dict)
    return {str(k): v for k, v in values.items() if k != "setting" and v is not None}


def register() -> None:
    """Store every schema in Hydra's ``ConfigStore`` and the ``gelato.system_overrides`` resolver.

    Idempotent: Hydra's plugin scan runs it (``hydra_plugins/gelato_conf``) at every start.
    """
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        node = OmegaConf.structured(schema)
        _unlock(node, schema)
        store.store(name=name, node=node)
    if not OmegaConf.has_resolver(SYSTEM_OVERRIDES_RESOLVER):
        OmegaConf.register_new_resolver(SYSTEM_OVERRIDES_RESOLVER, system_overrides)


def check_composed(cfg: DictConfig) -> None:
    """Refuse what composition lets through: ``+key=value`` keys and ``env.system=...``.

    ``+`` adds a key outside the schema; ``env.system`` / ``env.system_overrides`` set directly
    bypass the ``system`` group. (Hydra itself rejects an unknown key in a config file or a
    plain override.) Scripts call this at the top of ``main``.

    Raises:
        ValueError: naming the key (by dotted path) and the valid keys, or the override to use.
    """
    _check_keys(cfg, "")
    for key in ("system", "system_overrides"):
        if "env" in cfg and not OmegaConf.is_interpolation(cfg.env, key):
            raise ValueError(
                f"{_set_by_system_group(f'env.{key}')}, got env.{key}={cfg.env[key]!r}"
            )


def _set_by_system_group(key: str) -> str:
    """Why ``key`` cannot be set directly, and the spelling to use instead."""
    return (
        f"{key} is set from the system group; choose and change the system with system=<name> "
        "and system.<field>=<value> (e.g. system=high_latency system.bandwidth_hz=5e6)"
    )


def refuse_moved_overrides(argv: Sequence[str]) -> None:
    """Refuse command-line overrides of ``env.system`` / ``env.system_overrides`` up front.

    Both are interpolated from the ``system`` group, and Hydra cannot set a key inside an
    interpolated map (it fails with an internal assertion), so the scripts call this on
    ``sys.argv`` before Hydra parses it.

    Raises:
        SystemExit: naming the override and the spelling to use instead.
    """
    for arg in argv:
        key = arg.lstrip("+~").split("=", 1)[0]
        for moved in ("env.system_overrides", "env.system"):
            if key == moved or key.startswith(moved + "."):
                raise SystemExit(f"error: {arg}: {_set_by_system_group(moved)}")


def _check_keys(node: DictConfig, prefix: str) -> None:
    schema = OmegaConf.get_type(node)
    if schema is None or not dataclasses.is_dataclass(schema):
        return  # a free-form map
    valid = [f.name for f in dataclasses.fields(schema)]
    unknown = sorted({str(key) for key in node.keys()} - set(valid))
    if unknown:
        section = f" of {prefix[:-1]}" if prefix else ""
        raise ValueError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} "
            f"{[prefix + str(k) for k in unknown]}; valid keys{section}: {sorted(valid)}"
        )
    for key in valid:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            _check_keys(child, f"{prefix}{key}.")
