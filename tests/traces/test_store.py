"""Trace files: corrupt, truncated or mismatched files raise errors naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gelato_env.traces import ReplayBackend, TraceError, load_trace
from gelato_env.traces.store import read_header


def _edit_header(path: Path, **changes: object) -> None:
    data = json.loads((path / "header.json").read_text())
    data.update(changes)
    (path / "header.json").write_text(json.dumps(data))


def _flip_byte(file: Path) -> None:
    raw = bytearray(file.read_bytes())
    raw[-5] ^= 0xFF  # inside the data, after the .npy header
    file.write_bytes(bytes(raw))


def _truncate(file: Path) -> None:
    raw = file.read_bytes()
    file.write_bytes(raw[: len(raw) // 2])


CORRUPTIONS = [
    ("missing header", lambda p: (p / "header.json").unlink(), "header.json", "not found"),
    ("bad json", lambda p: (p / "header.json").write_text("{nope"), "header.json", "invalid JSON"),
    ("schema", lambda p: _edit_header(p, schema_version=99), "header.json", "schema_version 99"),
    (
        "no fields",
        lambda p: (p / "header.json").write_text('{"schema_version": 1}'),
        "header.json",
        "missing fields",
    ),
    ("truncated", lambda p: _truncate(p / "entropy.npy"), "entropy.npy", "truncated or corrupt"),
    ("missing column", lambda p: (p / "max_prob.npy").unlink(), "max_prob.npy", "column missing"),
    (
        "flipped byte",
        lambda p: _flip_byte(p / "accept_prob.npy"),
        "accept_prob.npy",
        "checksum mismatch",
    ),
    (
        "wrong shape",
        lambda p: np.save(p / "topp_size.npy", np.zeros((3, 2), np.int32)),
        "topp_size.npy",
        "header says",
    ),
    (
        "altered meta",
        lambda p: _edit_header(p, temperature=0.5),
        "header.json",
        "metadata was altered",
    ),
    (
        "bad offsets",
        lambda p: _edit_header(p, n_positions=1),
        "prompt_offsets.npy",
        "offsets disagree",
    ),
]


@pytest.mark.parametrize(
    ("corrupt", "file", "match"), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS]
)
def test_corrupt_trace_is_refused_naming_the_file(micro_trace, tmp_path, corrupt, file, match):
    copy = tmp_path / "trace"
    shutil.copytree(micro_trace.path, copy)
    load_trace(copy)  # the intact copy loads
    corrupt(copy)
    with pytest.raises(TraceError, match=match) as info:
        load_trace(copy)
    assert str(copy / file) in str(info.value)


MISMATCHES = [
    ({"gamma_max": 9}, "requested gamma_max 9 exceeds the recorded gamma_max 8"),
    ({"temperature": 0.7}, "requested temperature 0.7 but the trace was recorded at temperature 0"),
    ({"max_new_tokens": 41}, "requested max_new_tokens 41 exceeds the recorded max_new_tokens 40"),
]


@pytest.mark.parametrize(("request_kw", "match"), MISMATCHES)
def test_metadata_mismatch_is_refused(micro_trace, request_kw, match):
    with pytest.raises(TraceError, match=match) as info:
        load_trace(micro_trace.path, **request_kw)
    assert str(micro_trace.path / "header.json") in str(info.value)
    with pytest.raises(TraceError, match=match):
        ReplayBackend(micro_trace, **request_kw)


def test_model_id_mismatch_is_refused(micro_trace):
    with pytest.raises(TraceError, match="requested target_id 'x'"):
        load_trace(micro_trace.path, target_id="x")


def test_roundtrip_and_memory_mapped(micro_trace):
    again = load_trace(micro_trace.path)
    assert again.header == read_header(micro_trace.path)
    np.testing.assert_array_equal(again.draft_tokens, micro_trace.draft_tokens)
    assert again.entropy.dtype == np.float32
    assert again.entropy.base is not None  # a view on the mapped file, not a copy
    assert again.prompt_offsets[0] == 0
    assert int(again.prompt_offsets[-1]) == again.n_positions


def test_out_of_file_descriptors_is_not_called_corruption(micro_trace, monkeypatch):
    """EMFILE (e.g. thousands of single envs each mapping the trace) names the limit, not the
    file: the trace is fine and must not be reported truncated or corrupt."""
    import errno

    import gelato_env.traces.store as store

    def no_descriptors(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(store.np, "load", no_descriptors)
    with pytest.raises(OSError, match=r"too many open files.*ulimit -n") as info:
        store.load_trace(micro_trace.path)
    assert not isinstance(info.value, store.TraceError)
    assert info.value.errno == errno.EMFILE
