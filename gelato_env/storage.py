"""Where gelato keeps files, and how it writes them: the cache root and atomic writes.

The cache root holds what is derived once and reused (the real model pair's assembled GGUF
files and converted safetensors directories): ``$GELATO_CACHE_DIR`` if set, else the user cache
directory (``platformdirs.user_cache_dir("gelato")``). Atomic writes go to a temporary file
next to the target and are renamed over it, so an interrupted write never leaves a half file
(bytes, JSON, CSV rows).
Used by every layer (no gelato imports here).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CACHE_ENV_VAR = "GELATO_CACHE_DIR"


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` if given, else ``$GELATO_CACHE_DIR``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gelato"))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_bytes_atomic(Path(d) / "x.bin", b"abc")
    ...     (Path(d) / "x.bin").read_bytes()
    b'abc'
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_csv_atomic(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` as a CSV, atomically; returns the path.

    The columns are the union of the rows' keys in first-seen order (blank where a row lacks
    one).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_csv_atomic(Path(d) / "t.csv", [{"a": 1}, {"b": 2, "a": 3}])
    ...     out.read_text().splitlines()
    ['a,b', '1,', '3,2']
    """
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, text.getvalue().encode())
    return Path(path)
