"""Trace recording sharded over prompts across Ray workers (optional extra ``gelato-env[ray]``).

:func:`record_trace_ray` gives each worker a share of the prompts (round robin); a worker runs
:func:`~gelato_env.traces.recorder.record_prompt` on its prompts with the per-prompt sampling
seed of single-process recording (``seed * 1_000_003 + prompt index``) and returns the columns.
The driver writes them as the usual per-prompt chunks (``<dir>/chunks/NNNNNN.npz``) and
finalizes with :func:`~gelato_env.traces.recorder.record_trace`, which finds every chunk present
and only concatenates. The result is the single-process trace: same columns, same metadata,
same content checksum (``tests/traces/test_distributed.py``), provided the workers compute with
the same torch build and thread count (``RecordConfig.num_threads``; float reductions may differ
in the last bit across thread counts). Interrupted runs resume: recorded chunks are skipped.

Workers get the model pair by value (``ray.put``; fine for small pairs on one machine) or build
it themselves from a picklable zero-argument factory (large pairs, clusters). Local runs call
``ray.init(num_cpus=...)``; clusters pass ``address=`` (e.g. ``"auto"``) to :func:`ray_session`.
Chunks cross the object store, so the driver needs no shared filesystem with the workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy.typing as npt

from gelato_env.sd.models import ModelPair
from gelato_env.traces.prompts import PromptTokens
from gelato_env.traces.recorder import (
    CHUNK_DIR,
    MANIFEST_FILE,
    RecordConfig,
    RecordStats,
    _check_manifest,
    _manifest,
    _save_chunk,
    record_prompt,
    record_trace,
)
from gelato_env.traces.store import Trace

PairSource = ModelPair | Callable[[], ModelPair]


def import_ray() -> Any:
    """Import ray, or raise an ``ImportError`` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "distributed recording and sweeps need Ray: pip install 'gelato-env[ray]'"
        ) from exc
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Use the running Ray instance, or start one (and shut it down on exit).

    Args:
        address: a cluster address (``"auto"``, ``"ray://host:10001"``); None starts a local
            instance.
        num_cpus: CPUs of a local instance (None: Ray's default, all cores).

    Yields:
        The ``ray`` module.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        if address is not None:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _record_shard(
    pair: PairSource, shard: Sequence[tuple[int, PromptTokens]], cfg: RecordConfig
) -> list[tuple[int, dict[str, npt.NDArray[Any]], int]]:
    """Record the prompts of one shard; returns (prompt index, columns, n_inconsistent) each."""
    import torch

    model_pair = pair if isinstance(pair, ModelPair) else pair()
    device = next(model_pair.target.parameters()).device
    out = []
    for index, prompt in shard:
        gen = torch.Generator(device=device)
        gen.manual_seed(cfg.seed * 1_000_003 + index)  # as record_trace: the result is the same
        columns, n_bad = record_prompt(model_pair, prompt.token_ids, cfg, generator=gen)
        out.append((index, columns, n_bad))
    return out


def record_trace_ray(
    pair: PairSource,
    prompts: Sequence[PromptTokens],
    directory: str | os.PathLike[str],
    cfg: RecordConfig,
    *,
    prompt_set: str = "custom",
    num_workers: int = 2,
) -> tuple[Trace, RecordStats]:
    """Record a trace with prompts sharded over ``num_workers`` Ray tasks (module docstring).

    Needs a running Ray instance (:func:`ray_session`), or starts a local one with Ray's
    defaults.

    Args:
        pair: the model pair, or a picklable factory building it on each worker.
        prompts: tokenized prompts with unique ids (appending = the old list plus new ones).
        directory: output trace directory (resumable, as :func:`record_trace`).
        cfg: what to record.
        prompt_set: name of the prompt set, stored in the metadata.
        num_workers: Ray tasks to shard the pending prompts over (>= 1).

    Returns:
        The loaded trace and this run's diagnostics (``positions_per_s`` over the whole
        distributed phase, Ray scheduling included).
    """
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
    if not prompts:
        raise ValueError("prompts must not be empty")
    ray = import_ray()
    local_pair = pair if isinstance(pair, ModelPair) else pair()
    root = Path(directory)
    (root / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
    _check_manifest(root / MANIFEST_FILE, _manifest(local_pair, cfg, prompt_set))

    chunk = root / CHUNK_DIR
    pending = [(i, p) for i, p in enumerate(prompts) if not (chunk / f"{i:06d}.npz").exists()]
    shards = [pending[w::num_workers] for w in range(num_workers)]
    start = time.perf_counter()
    n_pos = n_bad = 0
    if pending:
        pair_ref = ray.put(pair)
        task = ray.remote(num_cpus=1)(_record_shard)
        futures = [task.remote(pair_ref, shard, cfg) for shard in shards if shard]
        for result in ray.get(futures):
            for index, columns, bad in result:
                _save_chunk(chunk / f"{index:06d}.npz", prompts[index], columns)
                n_pos += len(columns["target_tokens"])
                n_bad += bad
    elapsed = max(time.perf_counter() - start, 1e-9)
    trace, _ = record_trace(
        local_pair, prompts, root, cfg, prompt_set=prompt_set, progress=False
    )  # every chunk exists: this only validates and concatenates them
    return trace, RecordStats(len(pending), n_pos, n_bad, n_pos / elapsed)


__all__ = ["import_ray", "ray_session", "record_trace_ray"]
