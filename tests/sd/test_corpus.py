from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from gelato_env.sd import corpus


def test_stdlib_files_sorted_and_exclude_site_packages_and_tests() -> None:
    root = corpus.stdlib_root()
    files = corpus.stdlib_files()
    rel = [p.relative_to(root).as_posix() for p in files]
    assert rel == sorted(rel)
    assert "json/decoder.py" in rel
    assert not any("site-packages" in r or r.startswith("test/") for r in rel)
    with_tests = corpus.stdlib_files(include_tests=True)
    assert len(with_tests) > len(files)


def test_split_is_deterministic_disjoint_and_complete() -> None:
    train, held_out = corpus.split_files()
    train2, held_out2 = corpus.split_files()
    assert (train, held_out) == (train2, held_out2)
    assert not set(train) & set(held_out)
    assert sorted(train + held_out) == sorted(corpus.stdlib_files())
    assert 0.05 < len(held_out) / (len(train) + len(held_out)) < 0.15


def test_held_out_rule_is_sha1_of_relative_path(tmp_path: Path) -> None:
    for name in ("a.py", "pkg/b.py", "pkg/sub/c.py", "d.py", "e.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "site-packages").mkdir()
    (tmp_path / "site-packages" / "f.py").write_text("y = 2\n")
    train, held_out = corpus.split_files(root=tmp_path, modulus=2)
    for path in held_out:
        rel = path.relative_to(tmp_path).as_posix()
        assert int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 2 == 0
    assert len(train) + len(held_out) == 5


def test_is_held_out_rejects_bad_modulus() -> None:
    with pytest.raises(ValueError, match="modulus must be >= 2, got 1"):
        corpus.is_held_out("a.py", modulus=1)


def test_held_out_prompts_deterministic_and_well_formed() -> None:
    prompts = corpus.held_out_prompts(6, prompt_chars=300, seed=3)
    assert prompts == corpus.held_out_prompts(6, prompt_chars=300, seed=3)
    assert prompts != corpus.held_out_prompts(6, prompt_chars=300, seed=4)
    assert len({p.id for p in prompts}) == 6
    _, held_out = corpus.split_files()
    held_names = {corpus.relative_name(p) for p in held_out}
    for p in prompts:
        match = re.fullmatch(r"stdlib/(.+\.py):(\d+)", p.id)
        assert match is not None
        assert match.group(1) in held_names
        assert 150 <= len(p.text) <= 300
        header = p.text.splitlines()[-1].lstrip()
        assert header.startswith(corpus.PROMPT_HEADER_PREFIXES)
        lines = corpus.read_source(corpus.stdlib_root() / match.group(1)).splitlines(keepends=True)
        line = int(match.group(2))
        assert lines[line - 1].lstrip().startswith(corpus.PROMPT_HEADER_PREFIXES)
        assert not p.text.endswith("\n")
        assert "".join(lines[:line]).endswith(p.text + "\n")
        before = "".join(lines[:line])[: -len(p.text) - 1]
        assert before == "" or before.endswith("\n")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be >= 1, got 0"),
        ({"n": 1, "prompt_chars": 8}, "prompt_chars must be >= 16, got 8"),
        ({"n": 10**7}, "n must be <= "),
    ],
)
def test_held_out_prompts_validation(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        corpus.held_out_prompts(**kwargs)


def test_corpus_metadata_records_python_version() -> None:
    import platform

    meta = corpus.corpus_metadata()
    assert meta["python_version"] == platform.python_version()
    assert meta["n_train_files"] > meta["n_held_out_files"] > 0
