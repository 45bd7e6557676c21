"""Bad trace files, table-driven: each is refused at load with a message naming the file and what
is wrong, or (vocabulary) noticed when an env replays it (issue #15).

Unlike tests/traces/test_store.py (corrupt bytes, altered headers), the files here are written
by ``write_trace`` itself, so header, column hashes and checksum agree: only the content's own
consistency can catch them.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gelato_env.env import GelatoEnv
from gelato_env.traces import TraceError, load_trace
from gelato_env.traces.store import COLUMNS, INDEX_COLUMNS, Trace, write_trace

Arrays = dict[str, np.ndarray]


def _rewrite(trace: Trace, out: Path, edit: Callable[[Arrays, dict[str, Any]], None]) -> Path:
    """A copy of ``trace`` in ``out`` with ``edit(arrays, meta)`` applied, written consistently
    (column hashes and checksum recomputed by ``write_trace``)."""
    arrays = {name: np.array(getattr(trace, name)) for name in (*COLUMNS, *INDEX_COLUMNS)}
    drop = ("schema_version", "n_positions", "checksum", "columns")
    meta = {k: v for k, v in asdict(trace.header).items() if k not in drop}
    edit(arrays, meta)
    write_trace(out, meta, arrays)
    return out


def _set(name: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays, Any], None]:
    def edit(arrays: Arrays, meta: dict[str, Any]) -> None:
        arrays[name] = value(arrays[name])

    return edit


def _meta(**changes: Any) -> Callable[[Arrays, dict[str, Any]], None]:
    def edit(arrays: Arrays, meta: dict[str, Any]) -> None:
        meta.update(changes)

    return edit


def _swap_prompt_offsets(arrays: Arrays, meta: dict[str, Any]) -> None:
    offsets = arrays["prompt_offsets"].copy()
    offsets[1], offsets[2] = offsets[2], offsets[1]  # rows of prompt 1 would run backwards
    arrays["prompt_offsets"] = offsets


CONSISTENT_BUT_BAD = [
    # (id, edit, file, message fragment)
    *(
        (f"{name}_short", _set(name, lambda a: a[:-1]), f"{name}.npy",
         "column has 239 rows but the header says n_positions 240")
        for name in ("draft_tokens", "entropy", "max_prob", "topp_size", "accept_prob")
    ),
    ("entropy_long", _set("entropy", lambda a: np.concatenate([a, a[:3]])), "entropy.npy",
     "column has 243 rows but the header says n_positions 240"),
    ("entropy_narrow", _set("entropy", lambda a: a[:, :-1]), "entropy.npy",
     "column has 7 entries per row but the header says gamma_max 8"),
    ("gamma_max_header", _meta(gamma_max=4), "draft_tokens.npy",
     "column has 8 entries per row but the header says gamma_max 4"),
    ("prompt_offsets_backwards", _swap_prompt_offsets, "prompt_offsets.npy",
     "offsets disagree with the trace: they must start at 0, never decrease and end at the 240 "
     "positions"),
    ("prompt_tokens_short", _set("prompt_tokens", lambda a: a[:-2]), "prompt_token_offsets.npy",
     "and end at the 44 prompt tokens in prompt_tokens.npy"),
    ("vocab_size_zero", _meta(vocab_size=0), "header.json", "vocab_size must be an int >= 2"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "file", "fragment"),
    [case[1:] for case in CONSISTENT_BUT_BAD],
    ids=[case[0] for case in CONSISTENT_BUT_BAD],
)
def test_consistent_but_bad_trace_is_refused_at_load(
    micro_trace: Trace, tmp_path: Path, edit: Any, file: str, fragment: str
) -> None:
    path = _rewrite(micro_trace, tmp_path / "trace", edit)
    with pytest.raises(TraceError, match=re.escape(fragment)) as err:
        load_trace(path)
    assert str(path / file) in str(err.value)
    with pytest.raises(TraceError, match=re.escape(fragment)):  # before any env work, too
        GelatoEnv(trace_path=str(path))


def _header_list(path: Path) -> None:
    (path / "header.json").write_text("[1, 2]")


def _unknown_dtype(path: Path) -> None:
    data = json.loads((path / "header.json").read_text())
    data["columns"]["entropy"]["dtype"] = "<f2"
    (path / "header.json").write_text(json.dumps(data))


FILE_CASES = [
    # (id, corrupt(path) -> the path to load, file, fragment)
    ("header_is_a_list", _header_list, "header.json", "expected a JSON object"),
    ("dtype_disagrees", _unknown_dtype, "entropy.npy", "header says dtype <f2"),
]


@pytest.mark.parametrize(
    ("corrupt", "file", "fragment"),
    [case[1:] for case in FILE_CASES],
    ids=[case[0] for case in FILE_CASES],
)
def test_bad_trace_file_names_the_file(
    micro_trace: Trace, tmp_path: Path, corrupt: Any, file: str, fragment: str
) -> None:
    path = tmp_path / "trace"
    shutil.copytree(micro_trace.path, path)
    corrupt(path)
    with pytest.raises(TraceError, match=re.escape(fragment)) as err:
        load_trace(path)
    assert str(path / file) in str(err.value)


def test_trace_path_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "trace.npz"
    file.write_bytes(b"not a trace")
    with pytest.raises(TraceError, match=re.escape(f"{file}/header.json: trace header not found")):
        load_trace(file)


# -- vocabulary: a notice, not an error (PayloadParams.vocab_size may model another model's link)


def test_vocabulary_mismatch_warns_naming_both_sizes(micro_trace: Trace) -> None:
    with pytest.warns(UserWarning, match=r"vocabulary of 64 tokens.*vocab_size 151936") as rec:
        GelatoEnv(trace_path=str(micro_trace.path), system="paper")
    assert str(micro_trace.path) in str(rec[0].message)
    assert "system_overrides={'vocab_size': 64}" in str(rec[0].message)


@pytest.mark.parametrize("vocab_size", [64, 151_936])
def test_an_explicit_payload_vocabulary_is_not_warned_about(
    micro_trace: Trace, vocab_size: int
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = GelatoEnv(
            trace_path=str(micro_trace.path), system_overrides={"vocab_size": vocab_size}
        )
    assert env.params.payload.vocab_size == vocab_size
