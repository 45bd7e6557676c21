"""The default pair's corpus: the Python standard library's own source (DESIGN.md §8).

The standard library ships with every Python, so gelato can train its default model pair and
draw held-out prompts without any download. Files are the ``*.py`` files under
``sysconfig.get_paths()["stdlib"]``, never ``site-packages``/``dist-packages``; test packages
(``test``, ``tests``, ``idle_test``) are skipped unless asked for. Ordering is the sorted POSIX
path relative to the stdlib root, so the file list is the same on every machine with the same
Python version.

Train/held-out split (by file, never by line, so no held-out text leaks into training): a file
is held out when ``int(sha1(relative_posix_path).hexdigest(), 16) % held_out_modulus == 0``
(default modulus 10, about 10 % of the files). The rule depends only on the relative path, so
the split is stable across machines, across adding/removing other files and across runs.
"""

from __future__ import annotations

import hashlib
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SKIPPED_PACKAGE_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
TEST_DIRS = frozenset({"test", "tests", "idle_test"})
HELD_OUT_MODULUS = 10  # [D] sha1(path) % 10 == 0 -> held out: about 10 % of the files
PROMPT_HEADER_PREFIXES = ("def ", "class ", "async def ")


@dataclass(frozen=True)
class Prompt:
    """A held-out code prompt.

    Attributes:
        id: ``"stdlib/<relative path>:<line>"``, the 1-based line of the ``def``/``class``
            header the prompt ends with, e.g. ``"stdlib/json/decoder.py:120"``.
        text: the prompt, a prefix of the file that starts at a line boundary and ends with
            the header line *without* its newline, so the model continues with the body. (A
            trailing bare newline would split the newline+indent whitespace token the BPE
            learned, an out-of-distribution boundary after which small models emit blank lines.)
    """

    id: str
    text: str


def stdlib_root() -> Path:
    """Directory holding the running interpreter's standard library sources."""
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def relative_name(path: Path, root: Path | None = None) -> str:
    """POSIX path of ``path`` relative to the stdlib root, e.g. ``"json/decoder.py"``."""
    return path.resolve().relative_to(root or stdlib_root()).as_posix()


def stdlib_files(*, include_tests: bool = False, root: Path | None = None) -> list[Path]:
    """All standard-library ``*.py`` files, sorted by relative POSIX path.

    Args:
        include_tests: also include files under ``test``/``tests``/``idle_test`` packages.
        root: stdlib directory to scan; defaults to :func:`stdlib_root`.

    Returns:
        Absolute paths; ``site-packages``, ``dist-packages`` and ``__pycache__`` are excluded.
    """
    root = (root or stdlib_root()).resolve()
    skipped = SKIPPED_PACKAGE_DIRS if include_tests else SKIPPED_PACKAGE_DIRS | TEST_DIRS
    files = [
        p
        for p in root.rglob("*.py")
        if p.is_file() and not skipped.intersection(p.relative_to(root).parts[:-1])
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def is_held_out(relative: str, modulus: int = HELD_OUT_MODULUS) -> bool:
    """Whether the file at stdlib-relative POSIX path ``relative`` belongs to the held-out split.

    >>> is_held_out("json/decoder.py") in (True, False)
    True
    """
    if modulus < 2:
        raise ValueError(f"modulus must be >= 2, got {modulus}")
    digest = hashlib.sha1(relative.encode("utf-8")).hexdigest()
    return int(digest, 16) % modulus == 0


def split_files(
    *,
    include_tests: bool = False,
    modulus: int = HELD_OUT_MODULUS,
    root: Path | None = None,
) -> tuple[list[Path], list[Path]]:
    """Deterministic train/held-out split of :func:`stdlib_files` by path hash (module docstring).

    Returns:
        ``(train, held_out)``: disjoint, each sorted by relative path.
    """
    root = (root or stdlib_root()).resolve()
    train: list[Path] = []
    held_out: list[Path] = []
    for path in stdlib_files(include_tests=include_tests, root=root):
        (held_out if is_held_out(relative_name(path, root), modulus) else train).append(path)
    return train, held_out


def read_source(path: Path) -> str:
    """A source file's text (UTF-8; undecodable bytes replaced, never an error)."""
    return path.read_text(encoding="utf-8", errors="replace")


def _file_prompts(text: str, name: str, prompt_chars: int, min_chars: int) -> list[Prompt]:
    """Every prompt a file offers: for each header line, the longest line-aligned prefix."""
    lines = text.splitlines(keepends=True)
    ends = np.cumsum([len(line) for line in lines])  # ends[i]: char offset after line i
    prompts: list[Prompt] = []
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(PROMPT_HEADER_PREFIXES) or not line.endswith("\n"):
            continue
        stop = int(ends[i])
        start_line = i
        # Walk back line by line while the prefix stays within prompt_chars.
        while start_line > 0 and stop - int(ends[start_line - 1]) + len(lines[start_line - 1]) <= (
            prompt_chars
        ):
            start_line -= 1
        start = int(ends[start_line]) - len(lines[start_line])
        if min_chars <= stop - start <= prompt_chars:
            prompts.append(Prompt(id=f"stdlib/{name}:{i + 1}", text=text[start : stop - 1]))
    return prompts


def held_out_prompts(
    n: int,
    prompt_chars: int = 384,
    seed: int = 0,
    *,
    include_tests: bool = False,
    root: Path | None = None,
) -> list[Prompt]:
    """``n`` code prompts from the held-out files, deterministic in (Python version, seed).

    Each candidate ends with a ``def``/``class`` header line (no newline) and starts at the earliest
    line boundary that keeps it within ``prompt_chars`` characters; candidates shorter than
    half of ``prompt_chars`` are dropped. ``n`` candidates are drawn without replacement with
    ``numpy.random.default_rng(seed)`` from the candidate list sorted by (file, line), and
    returned in that sorted order.

    Args:
        n: number of prompts, >= 1.
        prompt_chars: maximum prompt length in characters (about 3-4 characters per token
            with the default 4096-entry BPE on Python code).
        seed: selects which candidates are drawn.
        include_tests: draw from held-out test files too.
        root: stdlib directory; defaults to :func:`stdlib_root`.

    Raises:
        ValueError: bad ``n``/``prompt_chars``, or fewer than ``n`` candidates exist.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if prompt_chars < 16:
        raise ValueError(f"prompt_chars must be >= 16, got {prompt_chars}")
    root = (root or stdlib_root()).resolve()
    _, held_out = split_files(include_tests=include_tests, root=root)
    candidates: list[Prompt] = []
    for path in held_out:
        text = read_source(path)
        candidates.extend(
            _file_prompts(text, relative_name(path, root), prompt_chars, prompt_chars // 2)
        )
    if len(candidates) < n:
        raise ValueError(f"n must be <= {len(candidates)} held-out candidates, got {n}")
    picked = np.sort(np.random.default_rng(seed).choice(len(candidates), size=n, replace=False))
    return [candidates[int(i)] for i in picked]


def corpus_metadata(*, include_tests: bool = False) -> dict[str, Any]:
    """Provenance of the corpus, for manifests and trace metadata."""
    train, held_out = split_files(include_tests=include_tests)
    return {
        "source": "python-stdlib",
        "python_version": platform.python_version(),
        "stdlib_root": str(stdlib_root()),
        "include_tests": include_tests,
        "split_rule": f"sha1(relative_posix_path) % {HELD_OUT_MODULUS} == 0 -> held out",
        "n_train_files": len(train),
        "n_held_out_files": len(held_out),
    }
