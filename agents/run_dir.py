"""The run directory belongs to one resolved config: resume only what was started with it.

The first start of a run stores its config in ``run_config.json`` (:class:`RunRecord`, with the
trace checksum, the W&B run id and the run name); a later start compares its own config with it
field by field (:func:`config_differences`) and refuses a different one, naming every differing
field (:class:`ConfigMismatchError`), or, when asked, starts a sibling run directory keyed on the
new config's hash (:func:`claim_run_dir`). Fields in :data:`RESUME_FREE_FIELDS` steer one
invocation (how long, how loud, what to compare afterwards) and may change between starts.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agents.checkpoints import latest_checkpoint
from gelato_env.storage import write_bytes_atomic

RUN_CONFIG = "run_config.json"
SUMMARY = "summary.json"

#: dotted config keys (and key prefixes) a resume may change: they steer one invocation, not
#: what is trained. ``train.total_timesteps`` extends a run (or, lowered, finds it complete);
#: ``compare`` reruns only the post-training comparison.
RESUME_FREE_FIELDS: tuple[str, ...] = (
    "resume",
    "on_config_change",
    "verbose",
    "progress_bar",
    "debug",
    "compare",
    "train.total_timesteps",
    "train.device",
    "wandb.mode",
    "wandb.log_checkpoints",
)

#: ``on_config_change`` values: refuse a changed config, or start a sibling run directory
ON_CONFIG_CHANGE = ("refuse", "new_run")

_ABSENT = "<absent>"


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{dotted.key: leaf}`` (lists are leaves).

    >>> flatten_config({"a": {"b": 1, "c": [2, 3]}, "d": None})
    {'a.b': 1, 'a.c': [2, 3], 'd': None}
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _is_free(key: str, free: Sequence[str]) -> bool:
    return any(key == f or key.startswith(f + ".") for f in free)


def config_differences(
    stored: Mapping[str, Any],
    current: Mapping[str, Any],
    free: Sequence[str] = RESUME_FREE_FIELDS,
) -> list[tuple[str, Any, Any]]:
    """Fields whose values differ between two configs, as ``(dotted key, stored, current)``.

    Fields present in one config only count (their missing value shows as ``<absent>``);
    fields in ``free`` (or below them) are skipped. Values compare after a JSON round trip,
    so tuples equal lists.

    >>> config_differences({"a": {"b": 1}, "seed": 0}, {"a": {"b": 2}, "seed": 0, "resume": 1})
    [('a.b', 1, 2)]
    """
    old = flatten_config(json.loads(json.dumps(stored, default=list)))
    new = flatten_config(json.loads(json.dumps(current, default=list)))
    keys = sorted(k for k in old.keys() | new.keys() if not _is_free(k, free))
    return [
        (k, old.get(k, _ABSENT), new.get(k, _ABSENT))
        for k in keys
        if old.get(k, _ABSENT) != new.get(k, _ABSENT)
    ]


def config_hash(config: Mapping[str, Any], free: Sequence[str] = RESUME_FREE_FIELDS) -> str:
    """8 hex digits of the SHA-256 of the config without its free fields (stable across runs)."""
    flat = flatten_config(json.loads(json.dumps(config, default=list)))
    kept = {k: v for k, v in flat.items() if not _is_free(k, free)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]


class ConfigMismatchError(ValueError):
    """A run directory holds a run started with another config.

    Attributes:
        run_dir: the run directory.
        differences: ``(dotted key, stored value, requested value)`` per differing field.
    """

    def __init__(self, run_dir: Path, differences: Sequence[tuple[str, Any, Any]]) -> None:
        self.run_dir = run_dir
        self.differences = list(differences)
        lines = [f"  {key}: {old!r} (stored) -> {new!r} (now)" for key, old, new in differences]
        super().__init__(
            f"{run_dir} holds a run started with a different config ({run_dir / RUN_CONFIG}); "
            f"{len(lines)} field(s) differ:\n" + "\n".join(lines) + "\n"
            "Resume it with the stored values, choose another run directory (hydra.run.dir=...), "
            "or pass on_config_change=new_run to start a new run in "
            f"{run_dir.name}__cfg<hash of the new config>."
        )


@dataclass(frozen=True)
class RunRecord:
    """What identifies a run directory's run: its config and its names (``run_config.json``).

    Attributes:
        config: the resolved config the run was started with (the script's whole config).
        trace_checksum: checksum of the replayed trace (a rebuilt trace is another run).
        wandb_id: the W&B run id every start of the run logs to.
        run_name: the run name ``f"{env}__{agent}__{seed}__{time}"`` chosen at the first start.
    """

    config: Mapping[str, Any]
    trace_checksum: str
    wandb_id: str
    run_name: str

    @classmethod
    def new(cls, config: Mapping[str, Any], trace_checksum: str, name_prefix: str) -> RunRecord:
        """A record for a new run: a fresh W&B id and ``f"{name_prefix}__{unix time}"``."""
        return cls(
            config=config,
            trace_checksum=trace_checksum,
            wandb_id=uuid.uuid4().hex[:8],
            run_name=f"{name_prefix}__{int(time.time())}",
        )

    def comparable(self) -> dict[str, Any]:
        """The fields a resume compares: the config plus the trace checksum."""
        return {**self.config, "trace_checksum": self.trace_checksum}

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(asdict(self), indent=2, default=list)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """Read a ``run_config.json``.

        Raises:
            ValueError: naming the file, when it is not JSON or misses a field.
        """
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: not a valid run config record: {err}") from err


def has_progress(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds something a start would continue (a checkpoint or a summary)."""
    return latest_checkpoint(run_dir / "checkpoints") is not None or (run_dir / SUMMARY).is_file()


def claim_run_dir(
    run_dir: Path, record: RunRecord, on_config_change: str = "refuse"
) -> tuple[Path, RunRecord, str]:
    """The run directory and record this start uses, checking the stored config.

    * no ``run_config.json``: a new run; the record is written (a directory holding
      checkpoints without one, from an older gelato, is refused: its config is unknown).
    * the stored config equals ``record``'s (free fields aside): the stored record (its W&B id
      and run name) continues.
    * it differs and the directory holds no checkpoint or summary: the record replaces it.
    * it differs otherwise: :class:`ConfigMismatchError`, or with ``on_config_change="new_run"``
      the sibling directory ``<run_dir>__cfg<config_hash>``, checked the same way (so
      rerunning the changed command resumes that one).

    Args:
        run_dir: the requested run directory.
        record: this start's record (config, trace checksum, a fresh W&B id and run name).
        on_config_change: ``refuse`` or ``new_run``.

    Returns:
        ``(run directory, record in force, what happened)`` with the last one of ``new``,
        ``resumed``, ``replaced`` or ``new_run``.

    Raises:
        ValueError: ``on_config_change`` not in :data:`ON_CONFIG_CHANGE`, or a legacy
            directory (checkpoints, no ``run_config.json``).
        ConfigMismatchError: the stored config differs and ``on_config_change="refuse"``.
    """
    if on_config_change not in ON_CONFIG_CHANGE:
        raise ValueError(
            f"on_config_change must be one of {list(ON_CONFIG_CHANGE)}, got {on_config_change!r}"
        )
    path = run_dir / RUN_CONFIG
    if not path.is_file():
        if has_progress(run_dir):
            raise ValueError(
                f"{run_dir} holds checkpoints but no {RUN_CONFIG} (written by an older gelato), "
                "so its config cannot be checked; choose another run directory "
                "(hydra.run.dir=...) or delete it"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, record.to_json().encode())
        return run_dir, record, "new"
    stored = RunRecord.load(path)
    differences = config_differences(stored.comparable(), record.comparable())
    if not differences:
        return run_dir, stored, "resumed"
    if not has_progress(run_dir):
        write_bytes_atomic(path, record.to_json().encode())
        return run_dir, record, "replaced"
    if on_config_change == "refuse":
        raise ConfigMismatchError(run_dir, differences)
    sibling = run_dir.with_name(f"{run_dir.name}__cfg{config_hash(record.comparable())}")
    new_dir, used, _ = claim_run_dir(sibling, record, "refuse")
    return new_dir, used, "new_run"
