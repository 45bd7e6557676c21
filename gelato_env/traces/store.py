"""On-disk trace format: a directory of flat ``.npy`` columns plus ``header.json``.

Layout of a finalized trace directory (schema version :data:`SCHEMA_VERSION`)::

    <trace>/
      header.json                 metadata (TraceHeader) + per-column dtype/shape/sha256
      target_tokens.npy           (n_pos,) int32     y_t, the target's token at output position t
      draft_tokens.npy            (n_pos, G) int32   d_{t,j}, the draft's continuation from y_<t
      entropy.npy                 (n_pos, G) float32 H(t, j) of q_{t,j}, nats
      max_prob.npy                (n_pos, G) float32 max_v q_{t,j}(v)
      topp_size.npy               (n_pos, G) int32   size of the top-p set of q_{t,j}
      accept_prob.npy             (n_pos, G) float32 greedy: match bit; sampling: min(1, p/q)
      prompt_offsets.npy          (n_prompts + 1,) int64  rows of prompt i: offsets[i]:offsets[i+1]
      prompt_tokens.npy           (n_prompt_tokens,) int32  all prompts' token ids, concatenated
      prompt_token_offsets.npy    (n_prompts + 1,) int64
      chunks/                     per-prompt ``.npz`` chunks written while recording (resume/append)

``G`` is ``gamma_max``; rows of all prompts are concatenated (position t of prompt i is row
``prompt_offsets[i] + t``). Columns are memory-mapped on load, so opening a 10^6-position trace
costs milliseconds; the content checksum (sha256 over the columns and the metadata that
determines them) is verified once per process per file state.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gelato_env.storage import write_bytes_atomic

SCHEMA_VERSION = 1
HEADER_FILE = "header.json"

#: column name -> (dtype, per-row trailing shape is (G,) when True)
COLUMNS: dict[str, tuple[str, bool]] = {
    "target_tokens": ("int32", False),
    "draft_tokens": ("int32", True),
    "entropy": ("float32", True),
    "max_prob": ("float32", True),
    "topp_size": ("int32", True),
    "accept_prob": ("float32", True),
}
INDEX_COLUMNS = ("prompt_offsets", "prompt_tokens", "prompt_token_offsets")

# Header fields that determine the content; the checksum covers them (not timestamps/versions).
_CONTENT_FIELDS = (
    "draft_id",
    "target_id",
    "tokenizer_sha256",
    "vocab_size",
    "eos_token_id",
    "temperature",
    "gamma_max",
    "p_top",
    "max_new_tokens",
    "seed",
    "prompt_set",
    "prompt_ids",
)


class TraceError(ValueError):
    """A trace file is missing, corrupt, or does not match what was requested."""


@dataclass(frozen=True)
class TraceHeader:
    """Metadata of a recorded trace (``header.json``).

    Attributes:
        schema_version: on-disk format version (:data:`SCHEMA_VERSION`).
        code_version: ``gelato_env.__version__`` of the recorder.
        draft_id: where the draft model came from (hub id, local path or a test label).
        target_id: where the target model came from.
        tokenizer_sha256: sha256 of the tokenizer's vocabulary ("none" for id-only pairs).
        vocab_size: vocabulary size V of the draft distributions.
        eos_token_id: the id that ended generations, or None.
        temperature: decoding temperature T (0.0 = greedy verification).
        gamma_max: recorded draft continuation length G per position.
        p_top: cumulative mass defining the top-p set sizes.
        max_new_tokens: output tokens per prompt at most (EOS may end sooner).
        seed: seed of the sampling generators (unused at T=0).
        prompt_set: name of the prompt set (e.g. "heldout", "jsonl:<file>", "gsm8k:test").
        prompt_ids: ids of the recorded prompts, in row order.
        n_positions: total rows (output positions over all prompts).
        checksum: sha256 over the columns and the content fields above.
        columns: per column name: ``{"dtype", "shape", "sha256"}``.
        created_at: ISO time of finalization (informational, not checksummed).
        provenance: how the trace was made (informational, not checksummed): model sources
            (packages, versions, file hashes), dtype, device, torch/transformers versions.
    """

    schema_version: int
    code_version: str
    draft_id: str
    target_id: str
    tokenizer_sha256: str
    vocab_size: int
    eos_token_id: int | None
    temperature: float
    gamma_max: int
    p_top: float
    max_new_tokens: int
    seed: int
    prompt_set: str
    prompt_ids: tuple[str, ...]
    n_positions: int
    checksum: str
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def greedy(self) -> bool:
        """Whether the trace was recorded under greedy verification (T = 0)."""
        return self.temperature == 0.0

    def to_json(self) -> str:
        """Serialize to the ``header.json`` text."""
        data = asdict(self)
        data["prompt_ids"] = list(self.prompt_ids)
        return json.dumps(data, indent=1, sort_keys=True)


def column_sha256(array: npt.NDArray[Any]) -> str:
    """sha256 of an array's dtype, shape and C-order bytes."""
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def content_checksum(meta: dict[str, Any], column_hashes: dict[str, str]) -> str:
    """Checksum over the content-determining metadata and the column hashes."""
    payload = {k: meta[k] for k in _CONTENT_FIELDS}
    payload["prompt_ids"] = list(payload["prompt_ids"])
    payload["columns"] = dict(sorted(column_hashes.items()))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _atomic_save_npy(path: Path, array: npt.NDArray[Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_trace(
    directory: str | os.PathLike[str], meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]
) -> TraceHeader:
    """Write columns and ``header.json`` (last, atomically, so a half-written trace never loads).

    Args:
        directory: trace directory (created if missing).
        meta: the :class:`TraceHeader` fields except ``schema_version``, ``n_positions``,
            ``checksum``, ``columns``.
        arrays: every name in :data:`COLUMNS` and :data:`INDEX_COLUMNS`.

    Returns:
        The header that was written.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    header_path = out / HEADER_FILE
    if header_path.exists():
        header_path.unlink()  # an old header must never describe new columns
    hashes: dict[str, str] = {}
    columns: dict[str, dict[str, Any]] = {}
    for name in (*COLUMNS, *INDEX_COLUMNS):
        array = np.ascontiguousarray(arrays[name])
        _atomic_save_npy(out / f"{name}.npy", array)
        hashes[name] = column_sha256(array)
        columns[name] = {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "sha256": hashes[name],
        }
    header = TraceHeader(
        schema_version=SCHEMA_VERSION,
        n_positions=int(arrays["target_tokens"].shape[0]),
        checksum=content_checksum(meta, hashes),
        columns=columns,
        **{**meta, "prompt_ids": tuple(meta["prompt_ids"])},
    )
    write_bytes_atomic(header_path, header.to_json().encode())
    return header


def read_header(directory: str | os.PathLike[str]) -> TraceHeader:
    """Read and validate ``header.json`` of a trace directory.

    Raises:
        TraceError: missing file, bad JSON, wrong schema version or missing fields.
    """
    path = Path(directory) / HEADER_FILE
    if not path.is_file():
        raise TraceError(f"{path}: trace header not found (not a finalized trace directory)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: corrupt trace header (invalid JSON: {exc})") from None
    if not isinstance(data, dict):
        raise TraceError(f"{path}: corrupt trace header (expected a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TraceError(
            f"{path}: unsupported trace schema_version {version!r} (this gelato reads "
            f"{SCHEMA_VERSION}); re-record the trace"
        )
    required = set(TraceHeader.__dataclass_fields__) - {"created_at", "columns", "provenance"}
    missing = sorted(required - set(data))
    if missing:
        raise TraceError(f"{path}: corrupt trace header (missing fields {missing})")
    for name, low in (
        ("vocab_size", 2),
        ("gamma_max", 1),
        ("max_new_tokens", 1),
        ("n_positions", 0),
    ):
        value = data[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise TraceError(
                f"{path}: corrupt trace header ({name} must be an int >= {low}, got {value!r})"
            )
    data["prompt_ids"] = tuple(data["prompt_ids"])
    known = set(TraceHeader.__dataclass_fields__)
    return TraceHeader(**{k: v for k, v in data.items() if k in known})


def _load_column(path: Path, spec: dict[str, Any]) -> npt.NDArray[Any]:
    if not path.is_file():
        raise TraceError(f"{path}: trace column missing")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):  # the file is fine, the process is not
            raise OSError(
                exc.errno,
                f"{path}: cannot map the trace column: too many open files (every loaded trace "
                f"holds one descriptor per column; build many envs as one GelatoVectorEnv, or "
                f"raise the limit with `ulimit -n`)",
            ) from None
        if exc.errno is not None:
            raise OSError(exc.errno, f"{path}: cannot read the trace column ({exc})") from None
        raise TraceError(f"{path}: truncated or corrupt trace column ({exc})") from None
    except (ValueError, EOFError) as exc:
        raise TraceError(f"{path}: truncated or corrupt trace column ({exc})") from None
    if array.dtype.str != spec["dtype"] or list(array.shape) != list(spec["shape"]):
        raise TraceError(
            f"{path}: trace column has dtype {array.dtype.str} shape {list(array.shape)}, "
            f"header says dtype {spec['dtype']} shape {spec['shape']}"
        )
    return np.asarray(array)


def _check_shapes(root: Path, header: TraceHeader, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Check row counts, row widths and prompt offsets against the header (before any use).

    A column can agree with its own header entry (and the checksum) and still disagree with
    ``n_positions``/``gamma_max``, e.g. when a tool wrote an inconsistent trace; replay would
    then fail, or read wrong rows, only at step time. This costs a few shape comparisons and
    two passes over ``n_prompts + 1`` offsets.
    """
    n, g = header.n_positions, header.gamma_max
    n_prompts = len(header.prompt_ids)
    for name, end, what in (
        ("prompt_offsets", n, "positions (n_positions in the header)"),
        (
            "prompt_token_offsets",
            len(arrays["prompt_tokens"]),
            "prompt tokens in prompt_tokens.npy",
        ),
    ):
        offsets = arrays[name]
        if offsets.shape != (n_prompts + 1,):
            raise TraceError(
                f"{root / (name + '.npy')}: offsets have shape {list(offsets.shape)} but the "
                f"header lists {n_prompts} prompts (expected [{n_prompts + 1}])"
            )
        if int(offsets[0]) != 0 or int(offsets[-1]) != end or bool(np.any(np.diff(offsets) < 0)):
            raise TraceError(
                f"{root / (name + '.npy')}: offsets disagree with the trace: they must start at "
                f"0, never decrease and end at the {end} {what}; got {offsets.tolist()[:8]}"
                f"{' ...' if len(offsets) > 8 else ''}"
            )
    for name, (_, per_row) in COLUMNS.items():
        where, shape = root / f"{name}.npy", arrays[name].shape
        if len(shape) != (2 if per_row else 1):
            want = "[n_positions, gamma_max]" if per_row else "[n_positions]"
            raise TraceError(f"{where}: column has shape {list(shape)}, expected {want}")
        if shape[0] != n:
            raise TraceError(
                f"{where}: column has {shape[0]} rows but the header says n_positions {n}"
            )
        if per_row and shape[1] != g:
            raise TraceError(
                f"{where}: column has {shape[1]} entries per row but the header says gamma_max {g}"
            )


# (resolved path, checksum, ((file size, mtime_ns), ...)) of traces verified in this process.
_VERIFIED: set[tuple[str, str, tuple[tuple[int, int], ...]]] = set()


def load_columns(
    directory: str | os.PathLike[str], *, verify: bool = True
) -> tuple[TraceHeader, dict[str, npt.NDArray[Any]]]:
    """Memory-map the columns of a finalized trace and check them against the header.

    Args:
        directory: the trace directory.
        verify: recompute the content checksum (once per process per file state; costs about
            a second per 10^7 rows on first use). Shapes and dtypes are always checked.

    Raises:
        TraceError: naming the file, for a missing/truncated/corrupt column, a shape/dtype
            disagreement with the header, or a checksum mismatch.
    """
    root = Path(directory)
    header = read_header(root)
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name in (*COLUMNS, *INDEX_COLUMNS):
        spec = header.columns.get(name)
        if spec is None:
            raise TraceError(f"{root / HEADER_FILE}: corrupt trace header (no entry for {name})")
        arrays[name] = _load_column(root / f"{name}.npy", spec)
    _check_shapes(root, header, arrays)
    if verify:
        _verify(root, header, arrays)
    return header, arrays


def _verify(root: Path, header: TraceHeader, arrays: dict[str, npt.NDArray[Any]]) -> None:
    files = [root / HEADER_FILE, *(root / f"{n}.npy" for n in arrays)]
    state = tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    key = (str(root.resolve()), header.checksum, state)
    if key in _VERIFIED:
        return
    hashes: dict[str, str] = {}
    for name, array in arrays.items():
        hashes[name] = column_sha256(array)
        if hashes[name] != header.columns[name]["sha256"]:
            raise TraceError(f"{root / (name + '.npy')}: checksum mismatch (file is corrupt)")
    meta = asdict(header)
    if content_checksum(meta, hashes) != header.checksum:
        raise TraceError(f"{root / HEADER_FILE}: checksum mismatch (header metadata was altered)")
    _VERIFIED.add(key)


@dataclass(frozen=True, eq=False)
class Trace:
    """A loaded trace: header plus memory-mapped columns (see the module docstring for layout).

    Fast accessors for vectorized consumers (the vector env): rows of prompt ``i`` are
    ``prompt_offsets[i]:prompt_offsets[i + 1]``; ``G = header.gamma_max``.

    Attributes:
        path: the trace directory.
        header: the metadata.
        target_tokens: shape ``(n_pos,)`` int32, the target's output token at each position.
        draft_tokens: shape ``(n_pos, G)`` int32, the draft's continuation from each position.
        entropy: shape ``(n_pos, G)`` float32, entropy of each draft distribution, nats.
        max_prob: shape ``(n_pos, G)`` float32, max-probability of each draft distribution.
        topp_size: shape ``(n_pos, G)`` int32, top-p set size of each draft distribution.
        accept_prob: shape ``(n_pos, G)`` float32, greedy match bits or min(1, p/q).
        prompt_offsets: shape ``(n_prompts + 1,)`` int64, row offsets per prompt.
        prompt_tokens: shape ``(n_prompt_tokens,)`` int32, prompt token ids, concatenated.
        prompt_token_offsets: shape ``(n_prompts + 1,)`` int64, offsets into ``prompt_tokens``.
    """

    path: Path
    header: TraceHeader
    target_tokens: npt.NDArray[np.int32]
    draft_tokens: npt.NDArray[np.int32]
    entropy: npt.NDArray[np.float32]
    max_prob: npt.NDArray[np.float32]
    topp_size: npt.NDArray[np.int32]
    accept_prob: npt.NDArray[np.float32]
    prompt_offsets: npt.NDArray[np.int64]
    prompt_tokens: npt.NDArray[np.int32]
    prompt_token_offsets: npt.NDArray[np.int64]

    @property
    def n_prompts(self) -> int:
        """Number of recorded prompts."""
        return len(self.header.prompt_ids)

    @property
    def n_positions(self) -> int:
        """Total recorded output positions (rows)."""
        return self.header.n_positions

    @property
    def gamma_max(self) -> int:
        """Recorded draft continuation length G."""
        return self.header.gamma_max

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """Shape ``(n_prompts,)``: output tokens recorded per prompt."""
        return np.diff(self.prompt_offsets)

    def prompt_ids_of(self, index: int) -> npt.NDArray[np.int32]:
        """Token ids of prompt ``index``, shape ``(n_prompt_tokens_i,)``."""
        lo, hi = self.prompt_token_offsets[index], self.prompt_token_offsets[index + 1]
        return self.prompt_tokens[lo:hi]

    def output_of(self, index: int) -> npt.NDArray[np.int32]:
        """The target's recorded output for prompt ``index``, shape ``(length_i,)``."""
        return self.target_tokens[self.prompt_offsets[index] : self.prompt_offsets[index + 1]]


def check_request(
    header: TraceHeader,
    where: Path,
    *,
    gamma_max: int | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    draft_id: str | None = None,
    target_id: str | None = None,
) -> None:
    """Refuse a request the recorded trace cannot serve (``where`` names the header file).

    Raises:
        TraceError: a requested value that exceeds or differs from the recorded one.
    """
    if gamma_max is not None and gamma_max > header.gamma_max:
        raise TraceError(
            f"{where}: requested gamma_max {gamma_max} exceeds the recorded gamma_max "
            f"{header.gamma_max}; re-record with a larger gamma_max"
        )
    if temperature is not None and float(temperature) != header.temperature:
        raise TraceError(
            f"{where}: requested temperature {temperature} but the trace was recorded at "
            f"temperature {header.temperature}"
        )
    if max_new_tokens is not None and max_new_tokens > header.max_new_tokens:
        raise TraceError(
            f"{where}: requested max_new_tokens {max_new_tokens} exceeds the recorded "
            f"max_new_tokens {header.max_new_tokens}"
        )
    for name, want, have in (
        ("draft_id", draft_id, header.draft_id),
        ("target_id", target_id, header.target_id),
    ):
        if want is not None and want != have:
            raise TraceError(f"{where}: requested {name} {want!r} but the trace has {have!r}")


def load_trace(
    directory: str | os.PathLike[str],
    *,
    verify: bool = True,
    gamma_max: int | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    draft_id: str | None = None,
    target_id: str | None = None,
) -> Trace:
    """Open a trace, optionally checking it can serve what the caller requests.

    Args:
        directory: the trace directory.
        verify: verify the content checksum (memoized per process; see :func:`load_columns`).
        gamma_max: requested largest budget; must be <= the recorded ``gamma_max``.
        temperature: requested decoding temperature; must equal the recorded one.
        max_new_tokens: requested generation length; must be <= the recorded one.
        draft_id: requested draft model id; must equal the recorded one.
        target_id: requested target model id; must equal the recorded one.

    Raises:
        TraceError: naming the file, for corrupt files or a mismatch with the request.
    """
    header, arrays = load_columns(directory, verify=verify)
    check_request(
        header, Path(directory) / HEADER_FILE, gamma_max=gamma_max, temperature=temperature,
        max_new_tokens=max_new_tokens, draft_id=draft_id, target_id=target_id,
    )  # fmt: skip
    return Trace(path=Path(directory), header=header, **arrays)
