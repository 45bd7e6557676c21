"""Record per-position statistics of real draft/target rollouts (docs/design.md §6).

For each prompt the target decodes up to ``max_new_tokens`` (or EOS): greedily at T = 0, by
sampling from softmax(logits / T) otherwise, giving y_0..y_{L-1}. At every output position t
the draft then continues for ``gamma_max`` steps from the correct prefix (prompt + y_<t),
and we record per step j: the draft token d_{t,j}, the entropy, max-probability and top-p set
size of q_{t,j}, and the verification outcome of d_{t,j} -- the greedy match bit against the
target argmax along the draft's continuation, or min(1, p/q) when sampling.

Speed: all positions of a prompt are batched (left-padded rows with explicit ``position_ids``,
``batch_positions`` rows per forward pass): one prefill plus ``gamma_max - 1`` cached steps of
the draft, and one target forward over ``prefix + d_{t,1..G}`` per batch. Batched and
incremental forwards differ by float rounding (~1e-7), which cannot move a token unless two
logits tie to that precision; the leading match bits are additionally taken against the
recorded y (the tokens the live engine would emit) so the trace is internally consistent,
and disagreements with the batched target pass are counted in ``RecordStats``.

Resumability: each prompt's result is written atomically to ``<dir>/chunks/NNNNNN.npz``; a
rerun skips recorded prompts, so an interrupted recording continues where it stopped and the
final columns (and checksum) equal an uninterrupted recording's. ``<dir>/recording.json``
pins the configuration a resumed or appended recording must match.

torch is imported lazily: ``gelato_env.traces`` stays importable without it (only ``sd``
imports torch at module level, docs/design.md §1).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gelato_env._version import __version__ as code_version
from gelato_env.sd.models import ModelPair
from gelato_env.storage import write_bytes_atomic
from gelato_env.traces.prompts import PromptTokens
from gelato_env.traces.store import COLUMNS, Trace, TraceError, load_trace, write_trace

CHUNK_DIR = "chunks"
PROVENANCE_FILE = "provenance.json"
RECORD_METHODS = ("prefix_cached", "reencode")
MANIFEST_FILE = "recording.json"


@dataclass(frozen=True, slots=True)
class RecordConfig:
    """What to record.

    Attributes:
        gamma_max: draft continuation length G recorded per position (largest replay budget).
        max_new_tokens: output tokens per prompt at most (EOS may end sooner).
        temperature: decoding temperature T; 0.0 records greedy verification (replay exact).
        p_top: cumulative mass defining the top-p set whose size is recorded (topp payload).
        seed: seed of the per-prompt sampling generators (unused at T = 0).
        batch_positions: output positions per batched forward pass (memory vs speed).
        num_threads: torch CPU threads while recording (None: leave torch's setting). Small
            models on a shared CPU record several times faster with 1. Float reductions may
            differ in the last bit across thread counts, so resume with the same setting.
        method: ``prefix_cached`` (fast) or ``reencode`` (the reference).
        decode_budget: drafting budget of the speculative decoding that produces y of a
            prompt decoded alone (speed only: SD is lossless).
        decode_prompts: at T = 0, prompts whose greedy y the target decodes together in one
            batch (``prefix_cached``; speed only, 1 decodes each prompt alone by SD).
    """

    gamma_max: int = 8  # [D] docs/design.md §3
    max_new_tokens: int = 128
    temperature: float = 0.0  # greedy: replay is exact (docs/design.md §6)
    p_top: float = 0.9  # [S] GELATO's top-p payload
    seed: int = 0
    batch_positions: int = 32
    num_threads: int | None = None
    method: str = "prefix_cached"  # [D] the fast recorder; "reencode" is the reference
    decode_budget: int = 4  # [D] SD budget producing y at T = 0 (speed only: SD is lossless)
    decode_prompts: int = 8  # [D] prompts decoded together at T = 0 (speed only)

    def __post_init__(self) -> None:
        for name in ("gamma_max", "max_new_tokens", "batch_positions", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if self.gamma_max < 1:
            raise ValueError(f"gamma_max must be >= 1, got {self.gamma_max}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        if self.method not in RECORD_METHODS:
            raise ValueError(f"method must be one of {RECORD_METHODS}, got {self.method!r}")
        if not isinstance(self.decode_budget, int) or self.decode_budget < 1:
            raise ValueError(f"decode_budget must be an int >= 1, got {self.decode_budget!r}")
        if not isinstance(self.decode_prompts, int) or self.decode_prompts < 1:
            raise ValueError(f"decode_prompts must be an int >= 1, got {self.decode_prompts!r}")
        if self.batch_positions < 1:
            raise ValueError(f"batch_positions must be >= 1, got {self.batch_positions}")
        if not self.temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.p_top <= 1.0:
            raise ValueError(f"p_top must be in (0, 1], got {self.p_top}")


@dataclass(frozen=True, slots=True)
class RecordStats:
    """Diagnostics of one recording run.

    Attributes:
        n_prompts_recorded: prompts recorded in this run (not counting resumed ones).
        n_positions_recorded: output positions recorded in this run.
        n_inconsistent: positions whose batched target pass disagreed with the recorded y on a
            leading match bit (float near-ties; the y-based bit is stored).
        positions_per_s: recording throughput of this run, positions per second.
    """

    n_prompts_recorded: int
    n_positions_recorded: int
    n_inconsistent: int
    positions_per_s: float


def tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of a tokenizer's vocabulary (``"none"`` for id-only pairs)."""
    if tokenizer is None:
        return "none"
    vocab = tokenizer.get_vocab()
    return hashlib.sha256(json.dumps(vocab, sort_keys=True).encode()).hexdigest()


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def record_prompt(
    pair: ModelPair,
    prompt_ids: Sequence[int],
    cfg: RecordConfig,
    *,
    generator: Any = None,
    decoded: Any = None,
) -> tuple[dict[str, npt.NDArray[Any]], int]:
    """Record one prompt with ``cfg.method`` (see :mod:`gelato_env.sd.rollouts`).

    Args:
        pair: the draft/target models.
        prompt_ids: the prompt's token ids.
        cfg: what to record.
        generator: ``torch.Generator`` for sampling (T > 0).
        decoded: the prompt's greedy y and target KV from
            :func:`~gelato_env.sd.rollouts.decode_greedy_batch` (``prefix_cached`` at T = 0).

    Returns:
        The prompt's columns (``target_tokens`` shape ``(L,)``, the others ``(L, G)``) and the
        number of match bits the batched target pass disagreed with the recorded y on.
    """
    import torch

    from gelato_env.sd.rollouts import ROLLOUTS, RolloutSpec

    prompt = [int(i) for i in prompt_ids]
    if not prompt:
        raise ValueError("prompt_ids must not be empty")
    spec = RolloutSpec(
        gamma_max=cfg.gamma_max,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        p_top=cfg.p_top,
        batch_positions=cfg.batch_positions,
        decode_budget=cfg.decode_budget,
    )
    with torch.inference_mode(), _torch_threads(cfg.num_threads):
        extra = {} if decoded is None else {"decoded": decoded}
        raw, n_bad = ROLLOUTS[cfg.method](pair, prompt, spec, generator=generator, **extra)
    return {name: raw[name].astype(COLUMNS[name][0]) for name in COLUMNS}, n_bad


def _manifest(pair: ModelPair, cfg: RecordConfig, prompt_set: str) -> dict[str, Any]:
    return {
        "draft_id": pair.draft_id,
        "target_id": pair.target_id,
        "tokenizer_sha256": tokenizer_sha256(pair.tokenizer),
        "vocab_size": pair.shared_vocab_size(),
        "eos_token_id": pair.eos_token_id,
        "temperature": float(cfg.temperature),
        "gamma_max": cfg.gamma_max,
        "p_top": float(cfg.p_top),
        "max_new_tokens": cfg.max_new_tokens,
        "seed": cfg.seed,
        "prompt_set": prompt_set,
    }


def _provenance(pair: ModelPair, cfg: RecordConfig) -> dict[str, Any]:
    """How the trace is made: library versions, device, dtypes, the pair's own sources."""
    import platform

    import torch
    import transformers

    draft_param = next(pair.draft.parameters())
    return {
        "models": dict(getattr(pair, "provenance", None) or {}),
        "draft_dtype": str(draft_param.dtype).removeprefix("torch."),
        "target_dtype": str(next(pair.target.parameters()).dtype).removeprefix("torch."),
        "device": str(draft_param.device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "method": cfg.method,
        "num_threads": cfg.num_threads if cfg.num_threads is not None else torch.get_num_threads(),
    }


def _check_manifest(path: Path, want: dict[str, Any]) -> None:
    if not path.exists():
        path.write_text(json.dumps(want, indent=1, sort_keys=True))
        return
    try:
        have = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}: corrupt recording manifest ({exc})") from None
    diff = sorted(k for k in want if have.get(k) != want[k])
    if diff:
        detail = ", ".join(f"{k}: recorded {have.get(k)!r} vs now {want[k]!r}" for k in diff)
        raise TraceError(
            f"{path}: cannot resume/append a recording with a different setup ({detail})"
        )


def _save_chunk(path: Path, prompt: PromptTokens, columns: dict[str, npt.NDArray[Any]]) -> None:
    buf = io.BytesIO()
    prompt_arr = np.asarray(prompt.token_ids, dtype=np.int32)
    np.savez(buf, prompt_id=np.asarray(prompt.id), prompt_tokens=prompt_arr, **columns)  # type: ignore[arg-type]
    write_bytes_atomic(path, buf.getvalue())


def _load_chunk(path: Path, prompt: PromptTokens) -> dict[str, npt.NDArray[Any]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            chunk = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError) as exc:
        raise TraceError(
            f"{path}: corrupt recording chunk ({exc}); delete it to re-record"
        ) from None
    same_tokens = np.array_equal(chunk["prompt_tokens"], np.asarray(prompt.token_ids))
    if str(chunk["prompt_id"]) != prompt.id or not same_tokens:
        raise TraceError(
            f"{path}: chunk holds prompt {str(chunk['prompt_id'])!r}, but prompt {prompt.id!r} "
            "is at this index now (prompt list changed; appending must keep the old order)"
        )
    return chunk


def _context_limit(model: Any) -> int | None:
    """Largest sequence a model's position embeddings take, or None when unbounded/unknown."""
    config = model.config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _check_context(pair: ModelPair, prompts: Sequence[PromptTokens], cfg: RecordConfig) -> None:
    """Refuse, before any work, a prompt whose recording would overrun a model's context."""
    longest = max(prompts, key=lambda p: len(p.token_ids))
    needed = len(longest.token_ids) + cfg.max_new_tokens + cfg.gamma_max
    for side, model in (("draft", pair.draft), ("target", pair.target)):
        limit = _context_limit(model)
        if limit is not None and needed > limit:
            raise ValueError(
                f"prompt {longest.id!r} has {len(longest.token_ids)} tokens; with max_new_tokens="
                f"{cfg.max_new_tokens} and gamma_max={cfg.gamma_max} recording needs {needed} "
                f"positions but the {side} model takes {limit}: shorten the prompts "
                "(max_prompt_tokens) or max_new_tokens"
            )


def _finalize(
    root: Path,
    meta: dict[str, Any],
    prompts: Sequence[PromptTokens],
    columns: Sequence[dict[str, npt.NDArray[Any]]],
) -> None:
    """Write the trace of ``prompts`` (in order) from their recorded columns."""
    lengths = [c["target_tokens"].shape[0] for c in columns]
    prompt_lengths = [len(p.token_ids) for p in prompts]
    arrays = {name: np.concatenate([c[name] for c in columns]) for name in COLUMNS}
    arrays["prompt_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    arrays["prompt_tokens"] = np.concatenate(
        [np.asarray(p.token_ids, dtype=np.int32) for p in prompts]
    )
    arrays["prompt_token_offsets"] = np.concatenate([[0], np.cumsum(prompt_lengths)]).astype(
        np.int64
    )
    provenance_path = root / PROVENANCE_FILE
    header_meta = {
        **meta,
        "provenance": json.loads(provenance_path.read_text()) if provenance_path.is_file() else {},
        "prompt_ids": [p.id for p in prompts],
        "code_version": code_version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_trace(root, header_meta, arrays)


def finalize_recorded(directory: str | os.PathLike[str]) -> Trace:
    """Write the trace of the prompts recorded so far (chunks 0, 1, ... without a gap).

    A recording in progress (or one interrupted) thus yields a usable, shorter trace; resuming
    the recording and finalizing again gives the full one.

    Raises:
        TraceError: no manifest or no recorded prompt in ``directory``.
    """
    root = Path(directory)
    manifest = root / MANIFEST_FILE
    if not manifest.is_file():
        raise TraceError(f"{manifest}: no recording manifest (not a recording directory)")
    meta = json.loads(manifest.read_text())
    prompts: list[PromptTokens] = []
    columns: list[dict[str, npt.NDArray[Any]]] = []
    while (path := root / CHUNK_DIR / f"{len(prompts):06d}.npz").is_file():
        with np.load(path, allow_pickle=False) as data:
            chunk = {k: data[k] for k in data.files}
        prompts.append(
            PromptTokens(str(chunk["prompt_id"]), tuple(chunk["prompt_tokens"].tolist()))
        )
        columns.append(chunk)
    if not prompts:
        raise TraceError(f"{root / CHUNK_DIR}: no recorded prompt to finalize")
    _finalize(root, meta, prompts, columns)
    return load_trace(root)


def _check_token_ids(pair: ModelPair, prompts: Sequence[PromptTokens]) -> None:
    """Refuse, before any work, a prompt with token ids outside the pair's vocabulary."""
    vocab = pair.shared_vocab_size()
    for prompt in prompts:
        low, high = min(prompt.token_ids), max(prompt.token_ids)
        if low < 0 or high >= vocab:
            raise ValueError(
                f"prompt {prompt.id!r} has token ids {low}..{high}, outside the pair's vocabulary "
                f"[0, {vocab}): were the prompts tokenized with another tokenizer?"
            )


def record_trace(
    pair: ModelPair,
    prompts: Sequence[PromptTokens],
    directory: str | os.PathLike[str],
    cfg: RecordConfig,
    *,
    prompt_set: str = "custom",
    progress: bool = True,
) -> tuple[Trace, RecordStats]:
    """Record (or resume, or append to) a trace and finalize its columns.

    Args:
        pair: the draft/target models (eval mode, any device).
        prompts: tokenized prompts; ids must be unique. Appending = the old list plus new ones.
        directory: output trace directory.
        cfg: what to record.
        prompt_set: name of the prompt set, stored in the metadata.
        progress: show a tqdm bar with positions/s.

    Returns:
        The loaded trace and this run's diagnostics.
    """
    import time

    import torch
    from tqdm.auto import tqdm

    from gelato_env.sd.rollouts import decode_greedy_batch

    if not prompts:
        raise ValueError("prompts must not be empty")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise ValueError(f"prompt ids must be unique, got duplicates in {ids}")
    _check_context(pair, prompts, cfg)
    _check_token_ids(pair, prompts)
    root = Path(directory)
    (root / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
    meta = _manifest(pair, cfg, prompt_set)
    _check_manifest(root / MANIFEST_FILE, meta)
    provenance = _provenance(pair, cfg)
    (root / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")

    columns: list[dict[str, npt.NDArray[Any]]] = []
    n_new = n_pos_new = n_bad = 0
    start = time.perf_counter()
    bar = tqdm(total=len(prompts), unit="prompt", disable=not progress, desc="record")
    todo = [i for i in range(len(prompts)) if not (root / CHUNK_DIR / f"{i:06d}.npz").exists()]
    batched = cfg.temperature == 0.0 and cfg.method == "prefix_cached" and cfg.decode_prompts > 1
    decoded: dict[int, Any] = {}
    for index, prompt in enumerate(prompts):
        path = root / CHUNK_DIR / f"{index:06d}.npz"
        if path.exists():
            columns.append(_load_chunk(path, prompt))
        else:
            if batched and index not in decoded:  # this and the next pending prompts' y
                group = todo[todo.index(index) :][: cfg.decode_prompts]
                with torch.inference_mode(), _torch_threads(cfg.num_threads):
                    outs = decode_greedy_batch(
                        pair, [prompts[i].token_ids for i in group], cfg.max_new_tokens
                    )
                decoded.update(zip(group, outs, strict=True))
            gen = torch.Generator(device=next(pair.target.parameters()).device)
            gen.manual_seed(cfg.seed * 1_000_003 + index)
            chunk, bad = record_prompt(
                pair, prompt.token_ids, cfg, generator=gen, decoded=decoded.pop(index, None)
            )
            _save_chunk(path, prompt, chunk)
            columns.append(chunk)
            n_new, n_pos_new, n_bad = (
                n_new + 1,
                n_pos_new + len(chunk["target_tokens"]),
                n_bad + bad,
            )
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(pos_per_s=f"{n_pos_new / elapsed:.0f}")
        bar.update(1)
    bar.close()
    elapsed = max(time.perf_counter() - start, 1e-9)

    _finalize(root, meta, prompts, columns)
    stats = RecordStats(n_new, n_pos_new, n_bad, n_pos_new / elapsed)
    return load_trace(root), stats


__all__ = [
    "RecordConfig",
    "RecordStats",
    "finalize_recorded",
    "record_prompt",
    "record_trace",
    "tokenizer_sha256",
]
